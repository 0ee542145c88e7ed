package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Run consumes commands until fetchCtx ends, then stops fetching, gives
// in-flight commands ShutdownGrace to finish and releases the rest for
// redelivery.
//
// Two contexts govern a delivery: fetchCtx (the caller's) ends when
// shutdown begins, so nothing new starts after it; workCtx carries the
// provider calls in flight and ends ShutdownGrace later, so a call about
// to finish is not thrown away.
func (w *Worker) Run(fetchCtx context.Context) error {
	cons, err := w.cfg.JS.Consumer(fetchCtx, w.cfg.Names.ActionsStream(), w.cfg.Names.WorkerConsumer())
	if err != nil && fetchCtx.Err() != nil {
		return nil // stopped while starting: a shutdown, not a failure
	}
	if err != nil {
		return fmt.Errorf("worker: consumer %s: %w (run disputesync setup)", w.cfg.Names.WorkerConsumer(), err)
	}
	maxDeliver := cons.CachedInfo().Config.MaxDeliver
	it, err := cons.Messages(jetstream.PullMaxMessages(w.cfg.Concurrency))
	if err != nil {
		return fmt.Errorf("worker: consume: %w", err)
	}
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(fetchCtx))
	defer cancelWork()
	stopped := make(chan struct{})
	go func() {
		select {
		case <-fetchCtx.Done():
			it.Stop()
			t := time.AfterFunc(w.cfg.ShutdownGrace, cancelWork)
			<-stopped
			t.Stop()
		case <-stopped:
		}
	}()
	w.log.Info("worker started", "consumer", w.cfg.Names.WorkerConsumer(), "concurrency", w.cfg.Concurrency, "handlers", w.cfg.Mux.Registered())
	sem := make(chan struct{}, w.cfg.Concurrency)
	var wg sync.WaitGroup
	for {
		msg, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				break
			}
			w.log.Warn("fetching commands", "err", err)
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-fetchCtx.Done():
			// Shutting down: handled at once, which decides to leave it for
			// redelivery (or, on its last delivery, to answer it).
			w.handle(workCtx, fetchCtx, msg, maxDeliver)
			continue
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			w.handle(workCtx, fetchCtx, msg, maxDeliver)
		}()
	}
	wg.Wait()
	close(stopped)
	if fetchCtx.Err() == nil {
		// The iterator ended on its own (consumer deleted, connection
		// closed): the worker is not working, so say so, and let the process
		// be restarted rather than stay up doing nothing.
		return fmt.Errorf("worker: stopped consuming %s without being asked to (consumer deleted or connection closed)", w.cfg.Names.WorkerConsumer())
	}
	w.log.Info("worker stopped")
	return nil
}
