package cache

import (
	"testing"
)

// TestRevisionState drives the listener's events through the store and
// checks what Revision and Watch report after each, and whether watchers
// were woken.
func TestRevisionState(t *testing.T) {
	t.Parallel()
	type step struct {
		name     string
		do       func(s *Store)
		wantRev  int64 // Watch's revision
		wantLive bool
		wantWake bool // the channel from the previous Watch was closed
	}
	connected := func(rev int64, known bool) func(*Store) { return func(s *Store) { s.connected(rev, known) } }
	notified := func(rev int64, known bool) func(*Store) { return func(s *Store) { s.notified(rev, known) } }
	lost := func(s *Store) { s.setLive(false) }
	tests := []struct {
		name  string
		steps []step
	}{
		{"connect, changes, loss, reconnect", []step{
			{"connected at 5", connected(5, true), 5, true, true},
			{"notified 6", notified(6, true), 6, true, true},
			{"notified 6 again", notified(6, true), 6, true, false},
			{"notified 5, committed before the read", notified(5, true), 6, true, false},
			{"notified 8", notified(8, true), 8, true, true},
			{"listener lost", lost, 8, false, true},
			{"lost again", lost, 8, false, false},
			{"reconnected at 9", connected(9, true), 9, true, true},
		}},
		{"reconnect to the same revision wakes watchers twice", []step{
			{"connected at 3", connected(3, true), 3, true, true},
			{"lost", lost, 3, false, true},
			{"reconnected at 3", connected(3, true), 3, true, true},
		}},
		{"older trigger: no revision table", []step{
			{"connected, revision unknown", connected(0, false), 0, false, false},
			{"empty payload", notified(0, false), 0, false, false},
			{"lost", lost, 0, false, false},
		}},
		{"unparsable payload makes the revision unknown until known again", []step{
			{"connected at 2", connected(2, true), 2, true, true},
			{"unknown payload, re-read failed", notified(0, false), 2, false, true},
			{"notified 4", notified(4, true), 4, true, true},
		}},
		{"restored database: reconnecting may go back", []step{
			{"connected at 10", connected(10, true), 10, true, true},
			{"lost", lost, 10, false, true},
			{"reconnected at 4", connected(4, true), 4, true, true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := New(nil, Options{}, nil)
			if rev, live := s.Revision(); rev != 0 || live {
				t.Fatalf("new store: Revision() = %d, %v; want 0, false", rev, live)
			}
			_, _, changed := s.Watch()
			for _, st := range tt.steps {
				gen := s.gen
				st.do(s)
				if s.gen == gen {
					t.Errorf("%s: the cache was not emptied", st.name)
				}
				rev, live, next := s.Watch()
				if rev != st.wantRev || live != st.wantLive {
					t.Errorf("%s: Watch() = %d, %v; want %d, %v", st.name, rev, live, st.wantRev, st.wantLive)
				}
				var woke bool
				select {
				case <-changed:
					woke = true
				default:
				}
				if woke != st.wantWake {
					t.Errorf("%s: watchers woken = %v, want %v", st.name, woke, st.wantWake)
				}
				if woke == (next == changed) {
					t.Errorf("%s: Watch's channel replaced = %v, want %v", st.name, next != changed, woke)
				}
				changed = next
				wantRev := st.wantRev
				if !st.wantLive {
					wantRev = 0
				}
				if rev, live := s.Revision(); rev != wantRev || live != st.wantLive {
					t.Errorf("%s: Revision() = %d, %v; want %d, %v", st.name, rev, live, wantRev, st.wantLive)
				}
			}
		})
	}
}

// TestRevisionDoesNotAllocate guards the hot path: every read call asks.
func TestRevisionDoesNotAllocate(t *testing.T) {
	s := New(nil, Options{}, nil)
	s.connected(7, true)
	if n := testing.AllocsPerRun(100, func() { _, _ = s.Revision() }); n != 0 {
		t.Errorf("Revision allocates %v times per call, want 0", n)
	}
}
