package sandbox

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// The control API under /_sandbox/ mirrors the Go control methods, JSON in
// and out:
//
//	GET    /_sandbox/disputes                 ground truth, NDJSON, newest first
//	POST   /_sandbox/disputes                 create (a Record; defaults filled)
//	GET    /_sandbox/disputes/{id}            one record
//	PATCH  /_sandbox/disputes/{id}            merge JSON fields into the record (PUT too)
//	POST   /_sandbox/disputes/{id}/close      close
//	DELETE /_sandbox/disputes/{id}            delete
//	GET    /_sandbox/effects?provider=&disputeRequestId=&disputeId=
//	GET    /_sandbox/requests                 calls per provider.endpoint
//	GET    /_sandbox/faults                   current faults by "provider.endpoint"
//	PUT    /_sandbox/faults                   {"provider","endpoint","faults":{...,"latency":"100ms"}}
//	DELETE /_sandbox/faults                   clear all
//	POST   /_sandbox/tick                     one living-population step
//	POST   /_sandbox/alipay/disputes          create an Alipay dispute; GET .../{id}
//	POST   /_sandbox/alipayplus/payments      create an Alipay+ payment
//	GET    /_sandbox/alipayplus/escalations?paymentRequestId=
//	POST   /_sandbox/alipayplus/escalations/{disputeId}/end  {"status":"REPLIED"|"CLOSED"|"CANCELED"}
//	POST   /_sandbox/ingenico/disputes        create an Ingenico dispute; GET .../{id}
//	GET    /_sandbox/ids                      SampleIDs
func (s *Server) controlRoutes() {
	m := s.mux
	m.HandleFunc("GET /_sandbox/disputes", s.ctlListDisputes)
	m.HandleFunc("POST /_sandbox/disputes", func(w http.ResponseWriter, r *http.Request) {
		var rec Record
		if !decode(w, r, &rec) {
			return
		}
		writeJSON(w, http.StatusCreated, s.CreateDispute(rec))
	})
	m.HandleFunc("GET /_sandbox/disputes/{id}", func(w http.ResponseWriter, r *http.Request) {
		rec, ok := s.Dispute(r.PathValue("id"))
		if !ok {
			ctlError(w, http.StatusNotFound, "no such dispute")
			return
		}
		writeJSON(w, http.StatusOK, rec)
	})
	patch := func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
		if err != nil {
			ctlError(w, http.StatusBadRequest, "read body")
			return
		}
		var probe Record
		if err := json.Unmarshal(body, &probe); err != nil {
			ctlError(w, http.StatusBadRequest, "bad JSON: "+err.Error())
			return
		}
		// Unmarshalling onto the current record changes only the fields given.
		if !s.UpdateDispute(r.PathValue("id"), func(rec *Record) { _ = json.Unmarshal(body, rec) }) {
			ctlError(w, http.StatusNotFound, "no such dispute")
			return
		}
		rec, _ := s.Dispute(r.PathValue("id"))
		writeJSON(w, http.StatusOK, rec)
	}
	m.HandleFunc("PATCH /_sandbox/disputes/{id}", patch)
	m.HandleFunc("PUT /_sandbox/disputes/{id}", patch)
	m.HandleFunc("POST /_sandbox/disputes/{id}/close", func(w http.ResponseWriter, r *http.Request) {
		if !s.CloseDispute(r.PathValue("id")) {
			ctlError(w, http.StatusNotFound, "no such dispute")
			return
		}
		rec, _ := s.Dispute(r.PathValue("id"))
		writeJSON(w, http.StatusOK, rec)
	})
	m.HandleFunc("DELETE /_sandbox/disputes/{id}", func(w http.ResponseWriter, r *http.Request) {
		if !s.DeleteDispute(r.PathValue("id")) {
			ctlError(w, http.StatusNotFound, "no such dispute")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("GET /_sandbox/effects", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		out := s.EffectsFor(q.Get("provider"), q.Get("disputeRequestId"), q.Get("disputeId"))
		if out == nil {
			out = []Effect{}
		}
		writeJSON(w, http.StatusOK, out)
	})
	m.HandleFunc("GET /_sandbox/requests", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Requests())
	})
	m.HandleFunc("GET /_sandbox/faults", func(w http.ResponseWriter, r *http.Request) {
		s.mu.RLock()
		out := make(map[string]Faults, len(s.faults))
		for k, f := range s.faults {
			out[k] = f
		}
		s.mu.RUnlock()
		writeJSON(w, http.StatusOK, out)
	})
	m.HandleFunc("PUT /_sandbox/faults", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Provider string `json:"provider"`
			Endpoint string `json:"endpoint"`
			Faults   Faults `json:"faults"`
		}
		if !decode(w, r, &req) {
			return
		}
		if req.Provider == "" {
			ctlError(w, http.StatusBadRequest, "provider required")
			return
		}
		s.SetFaults(req.Provider, req.Endpoint, req.Faults)
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("DELETE /_sandbox/faults", func(w http.ResponseWriter, r *http.Request) {
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("POST /_sandbox/tick", func(w http.ResponseWriter, r *http.Request) {
		s.Tick()
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("POST /_sandbox/alipay/disputes", func(w http.ResponseWriter, r *http.Request) {
		var d AlipayDispute
		if decode(w, r, &d) {
			writeJSON(w, http.StatusCreated, s.CreateAlipayDispute(d))
		}
	})
	m.HandleFunc("GET /_sandbox/alipay/disputes/{id}", func(w http.ResponseWriter, r *http.Request) {
		d, ok := s.AlipayDisputeByID(r.PathValue("id"))
		found(w, d, ok)
	})
	m.HandleFunc("POST /_sandbox/alipayplus/payments", func(w http.ResponseWriter, r *http.Request) {
		var p AlipayPlusPayment
		if decode(w, r, &p) {
			writeJSON(w, http.StatusCreated, s.CreateAlipayPlusPayment(p))
		}
	})
	m.HandleFunc("GET /_sandbox/alipayplus/escalations", func(w http.ResponseWriter, r *http.Request) {
		out := s.Escalations(r.URL.Query().Get("paymentRequestId"))
		if out == nil {
			out = []AlipayPlusEscalation{}
		}
		writeJSON(w, http.StatusOK, out)
	})
	m.HandleFunc("POST /_sandbox/alipayplus/escalations/{id}/end", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Status string `json:"status"`
		}
		if !decode(w, r, &req) {
			return
		}
		e, ok := s.EndEscalation(r.PathValue("id"), req.Status)
		if !ok {
			ctlError(w, http.StatusConflict, "no ongoing escalation with that id, or status not REPLIED/CLOSED/CANCELED")
			return
		}
		writeJSON(w, http.StatusOK, e)
	})
	m.HandleFunc("POST /_sandbox/ingenico/disputes", func(w http.ResponseWriter, r *http.Request) {
		var d IngenicoDispute
		if decode(w, r, &d) {
			writeJSON(w, http.StatusCreated, s.CreateIngenicoDispute(d))
		}
	})
	m.HandleFunc("GET /_sandbox/ingenico/disputes/{id}", func(w http.ResponseWriter, r *http.Request) {
		d, ok := s.IngenicoDisputeByID(r.PathValue("id"))
		found(w, d, ok)
	})
	m.HandleFunc("GET /_sandbox/ids", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.SampleIDs())
	})
}

// ctlListDisputes streams the ground truth as NDJSON, rendering a chunk of
// records per read lock so that a slow reader never blocks the list API.
func (s *Server) ctlListDisputes(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	recs := make([]*stored, len(s.store.recs))
	copy(recs, s.store.recs)
	s.mu.RUnlock()
	w.Header().Set("Content-Type", "application/x-ndjson")
	bw := bufio.NewWriterSize(w, 64<<10)
	const chunk = 1000
	for end := len(recs); end > 0; end -= chunk {
		start := max(0, end-chunk)
		s.mu.RLock()
		now := s.now().Unix()
		var buf []byte
		for i := end - 1; i >= start; i-- {
			buf = recs[i].appendJSON(buf, now)
			buf = append(buf, '\n')
		}
		s.mu.RUnlock()
		if _, err := bw.Write(buf); err != nil {
			return // the client went away
		}
		if r.Context().Err() != nil {
			return
		}
	}
	_ = bw.Flush()
}

// faultsJSON is Faults on the wire, with the latency as a Go duration
// string (a number is read as nanoseconds).
type faultsJSON struct {
	ErrorRate         float64         `json:"errorRate,omitempty"`
	ThrottleRate      float64         `json:"throttleRate,omitempty"`
	TimeoutRate       float64         `json:"timeoutRate,omitempty"`
	ApplyThenFailRate float64         `json:"applyThenFailRate,omitempty"`
	MalformedRate     float64         `json:"malformedRate,omitempty"`
	UnavailableRate   float64         `json:"unavailableRate,omitempty"`
	Latency           json.RawMessage `json:"latency,omitempty"`
	RateLimit         float64         `json:"rateLimit,omitempty"`
}

func toFaultsJSON(f Faults) faultsJSON {
	j := faultsJSON{f.ErrorRate, f.ThrottleRate, f.TimeoutRate, f.ApplyThenFailRate, f.MalformedRate, f.UnavailableRate, nil, f.RateLimit}
	if f.Latency > 0 {
		j.Latency, _ = json.Marshal(f.Latency.String())
	}
	return j
}

func (j faultsJSON) faults() (Faults, error) {
	f := Faults{ErrorRate: j.ErrorRate, ThrottleRate: j.ThrottleRate, TimeoutRate: j.TimeoutRate,
		ApplyThenFailRate: j.ApplyThenFailRate, MalformedRate: j.MalformedRate, UnavailableRate: j.UnavailableRate, RateLimit: j.RateLimit}
	if len(j.Latency) > 0 && string(j.Latency) != "null" {
		var str string
		var ns int64
		switch {
		case json.Unmarshal(j.Latency, &str) == nil:
			d, err := time.ParseDuration(str)
			if err != nil {
				return Faults{}, fmt.Errorf("sandbox: faults: latency: %w", err)
			}
			f.Latency = d
		case json.Unmarshal(j.Latency, &ns) == nil:
			f.Latency = time.Duration(ns)
		default:
			return Faults{}, errors.New("sandbox: faults: latency is neither a duration string nor nanoseconds")
		}
	}
	for _, p := range []float64{f.ErrorRate, f.ThrottleRate, f.TimeoutRate, f.ApplyThenFailRate, f.MalformedRate, f.UnavailableRate} {
		if p < 0 || p > 1 {
			return Faults{}, errors.New("sandbox: faults: rates must be within [0, 1]")
		}
	}
	if f.Latency < 0 || f.RateLimit < 0 {
		return Faults{}, errors.New("sandbox: faults: latency and rateLimit must not be negative")
	}
	return f, nil
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(v); err != nil {
		ctlError(w, http.StatusBadRequest, "bad JSON: "+err.Error())
		return false
	}
	return true
}

func found(w http.ResponseWriter, v any, ok bool) {
	if !ok {
		ctlError(w, http.StatusNotFound, "not found")
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func ctlError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
