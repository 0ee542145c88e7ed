package webhook_test

import (
	"net/http"
	"testing"

	"github.com/disputesync/disputesync/docs"
	"github.com/disputesync/disputesync/internal/topology"
)

// TestSchemasAcceptEveryEvent (issue 8 acceptance 2): the events the
// receiver publishes for every provider's notification pass
// docs.ValidateMessage. The events helper validates every event it reads,
// so every test of this package that reads events checks them too; this
// test counts the validations.
func TestSchemasAcceptEveryEvent(t *testing.T) {
	// Not parallel: top-level parallel tests are paused while it runs, so
	// the counter's difference is exactly this test's events.
	before := docs.Validated()["event"]
	read := 0
	for _, k := range kinds {
		b := newBundle(t, topology.Options{}, nil)
		n := k.build(t, b.sb)
		if d := b.once(t, n); !d.Delivered || d.LastStatus != http.StatusOK {
			t.Fatalf("%s: delivery %+v", k.provider, d)
		}
		evs := events(t, b.js, b.names)
		if len(evs) != len(k.want) {
			t.Fatalf("%s: events %v, want %v", k.provider, types(evs), k.want)
		}
		read += len(evs)
	}
	if checked := docs.Validated()["event"] - before; checked != read {
		t.Errorf("validated %d events, read %d", checked, read)
	}
	t.Logf("validated %d real webhook events against docs/schemas; this process so far: %v", read, docs.Validated())
}
