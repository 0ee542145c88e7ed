package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/internal/topology"
)

// dryRun shows the provider request a command would cause: the real
// handler builds and signs it against a local recorder that answers an
// error, so nothing reaches the provider. Credentials are masked.
func dryRun(ctx context.Context, e env, c *config, provider, action string, cmd *handlers.Command) error {
	var got *http.Request
	var body []byte
	rec := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got == nil {
			got = r.Clone(context.Background())
			body, _ = io.ReadAll(io.LimitReader(r.Body, 1<<20))
		}
		http.Error(w, "dry run", http.StatusServiceUnavailable)
	}))
	defer rec.Close()
	rc := *c
	// Where the credentials come from is decided by the real URLs; the
	// request then goes to the recorder.
	log := newLogger(&config{LogLevel: "error", LogFormat: "text"}, env{stderr: io.Discard})
	cr, err := loadCredentials(&rc, log)
	if err != nil {
		return err
	}
	rc.DisputeAPIURL, rc.AlipayURL, rc.AlipayPlusURL, rc.IngenicoURL = rec.URL, rec.URL, rec.URL, rec.URL
	names, _ := topology.New(c.Prefix)
	mux, err := providerMux(&rc, cr, nil, names, nil, nil, log)
	if err != nil {
		return err
	}
	h, ok := mux.Handler(provider, action)
	if !ok {
		return fmt.Errorf("%s is not configured here: give its credentials to see the signed request", provider)
	}
	_, _ = h.Apply(ctx, &handlers.Call{Provider: provider, Action: action, Command: cmd, Attempt: 1})
	if got == nil {
		fmt.Fprintln(e.stdout, "no provider request would be sent (the handler refused the command locally)")
		return nil
	}
	fmt.Fprintf(e.stdout, "would send to the provider:\n%s %s\n", got.Method, got.URL.RequestURI())
	keys := make([]string, 0, len(got.Header))
	for k := range got.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := strings.Join(got.Header.Values(k), ", ")
		switch strings.ToLower(k) {
		case "authorization", "signature":
			v = "[masked]"
		}
		fmt.Fprintf(e.stdout, "%s: %s\n", k, v)
	}
	fmt.Fprintf(e.stdout, "\n%s\n", truncateForDisplay(body))
	return nil
}
