package worker

import (
	"testing"
	"time"

	"github.com/disputesync/disputesync/internal/testenv"
)

// Every claim answer is the same when go-redis runs the script twice (a
// lost reply), and a stale holder never overwrites a newer result.
func TestClaimScriptRerunsAndFencing(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testenv.Context(t)
	s := NewStore(env.Redis, env.Names, 300*time.Millisecond, time.Hour)

	c, err := s.Claim(ctx, "id1", "fp", "A")
	if err != nil || c.Status != Claimed || c.Epoch != 1 {
		t.Fatalf("first claim %+v %v", c, err)
	}
	if c, _ = s.Claim(ctx, "id1", "fp", "A"); c.Status != Claimed || c.Epoch != 1 {
		t.Fatalf("re-run of the first claim %+v", c)
	}
	if c, _ = s.Claim(ctx, "id1", "fp", "B"); c.Status != Busy {
		t.Fatalf("claim by another while the lease lives %+v", c)
	}
	if c, _ = s.Claim(ctx, "id1", "other", "B"); c.Status != Inconsistent {
		t.Fatalf("claim with another fingerprint %+v", c)
	}
	if err := s.BeginCall(ctx, "id1", "A", 1, 1); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err = s.Claim(ctx, "id1", "fp", "B")
		if err != nil {
			t.Fatal(err)
		}
		if c.Status != Busy || time.Now().After(deadline) {
			break
		}
		time.Sleep(c.Wait) // the lease's own remaining time, reported by Redis
	}
	if c.Status != TakenOver || c.Epoch != 2 || c.Calls != 1 {
		t.Fatalf("takeover after the lease %+v", c)
	}
	if c, _ = s.Claim(ctx, "id1", "fp", "B"); c.Status != TakenOver || c.Epoch != 2 {
		t.Fatalf("re-run of the takeover %+v, want takeover again", c)
	}
	// The deposed holder cannot store its result.
	if _, err := s.Complete(ctx, "id1", "A", 1, []byte(`{"outcome":"stale"}`), 7); err != ErrLostClaim {
		t.Fatalf("stale complete: %v", err)
	}
	if _, err := s.Complete(ctx, "id1", "B", 2, []byte(`{"outcome":"new"}`), 8); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Complete(ctx, "id1", "B", 2, []byte(`{"outcome":"new"}`), 8); err != nil {
		t.Fatalf("re-run of complete: %v", err)
	}
	winner, err := s.Complete(ctx, "id1", "A", 1, []byte(`{"outcome":"stale"}`), 7)
	if err != ErrLostClaim || string(winner) != `{"outcome":"new"}` {
		t.Fatalf("stale complete after done: %s %v", winner, err)
	}
	c, _ = s.Claim(ctx, "id1", "fp", "C")
	if c.Status != Replay || string(c.Result) != `{"outcome":"new"}` || c.Seq != 8 {
		t.Fatalf("claim of a done command %+v", c)
	}
}
