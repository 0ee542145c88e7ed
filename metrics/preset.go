package metrics

import "strings"

// Bounded label values of docs/contract.md section 4.
var (
	Outcomes           = []string{"succeeded", "failed", "rejected"}
	IdempotencyResults = []string{"claimed", "replayed", "inconsistent", "busy"}
	WebhookResults     = []string{"accepted", "duplicate", "unauthenticated", "invalid", "error"}
)

// Known lists label values known at start-up, for Preset.
type Known struct {
	Actions          map[string][]string // provider -> its actions
	DLQReasons       []string            // the worker's dead-letter reasons
	WebhookProviders []string
}

// Preset creates the series of k at zero. A counter series that first
// appears at 1 is invisible to rate() and increase(), so without this the
// first dead letter, the first unauthenticated notification or the first
// succeeded action would not move the dashboard or the alerts; it also
// lets every panel show a zero line instead of "No data" on a quiet system.
// (disputesync_idempotency_total is preset by New.)
func (m *Metrics) Preset(k Known) {
	if m == nil {
		return
	}
	for provider, actions := range k.Actions {
		for _, a := range actions {
			for _, o := range Outcomes {
				m.Actions.WithLabelValues(provider, a, o)
			}
			for _, r := range k.DLQReasons {
				m.DLQ.WithLabelValues(provider, a, r)
			}
		}
	}
	for _, p := range k.WebhookProviders {
		for _, r := range WebhookResults {
			m.WebhookNotifications.WithLabelValues(p, r)
		}
	}
}

// ActionsFromKeys turns "<provider>.<action>" keys (handlers.Mux.Registered)
// into Known.Actions.
func ActionsFromKeys(keys []string) map[string][]string {
	out := map[string][]string{}
	for _, k := range keys {
		if p, a, ok := strings.Cut(k, "."); ok && p != "" && a != "" {
			out[p] = append(out[p], a)
		}
	}
	return out
}
