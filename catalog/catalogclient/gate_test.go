package catalogclient

import "testing"

func TestGate(t *testing.T) {
	type step struct {
		do       string // "observe", "lost", "begin" (read Epoch), "keep"
		rev      int64
		live     bool
		wantDrop bool // observe
		wantKeep bool // keep: with the epoch of the last "begin"
		wantLive bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"not live before the first message", []step{
			{do: "begin"}, {do: "keep", rev: 5, wantKeep: false, wantLive: false},
		}},
		{"live: an answer at the watched revision is kept", []step{
			{do: "observe", rev: 5, live: true, wantDrop: true, wantLive: true},
			{do: "begin"}, {do: "keep", rev: 5, wantKeep: true, wantLive: true},
		}},
		{"an answer newer than the watch is kept", []step{
			{do: "observe", rev: 5, live: true, wantDrop: true, wantLive: true},
			{do: "begin"}, {do: "keep", rev: 6, wantKeep: true, wantLive: true},
		}},
		{"an answer older than the watch is not", []step{
			{do: "observe", rev: 5, live: true, wantDrop: true, wantLive: true},
			{do: "begin"}, {do: "keep", rev: 4, wantKeep: false, wantLive: true},
		}},
		{"an event during the read: not kept, even at the same revision", []step{
			{do: "observe", rev: 5, live: true, wantDrop: true, wantLive: true},
			{do: "begin"},
			{do: "observe", rev: 5, live: true, wantDrop: false, wantLive: true},
			{do: "keep", rev: 5, wantKeep: false, wantLive: true},
		}},
		{"a new revision drops the entries", []step{
			{do: "observe", rev: 5, live: true, wantDrop: true, wantLive: true},
			{do: "observe", rev: 6, live: true, wantDrop: true, wantLive: true},
		}},
		{"live=false drops and stops serving", []step{
			{do: "observe", rev: 5, live: true, wantDrop: true, wantLive: true},
			{do: "observe", rev: 5, live: false, wantDrop: true, wantLive: false},
			{do: "begin"}, {do: "keep", rev: 5, wantKeep: false, wantLive: false},
		}},
		{"lost stream: not served, entries kept for the same revision", []step{
			{do: "observe", rev: 5, live: true, wantDrop: true, wantLive: true},
			{do: "begin"},
			{do: "lost", wantLive: false},
			{do: "keep", rev: 5, wantKeep: false, wantLive: false},
			{do: "observe", rev: 5, live: true, wantDrop: false, wantLive: true},
		}},
		{"lost stream back at another revision: dropped", []step{
			{do: "observe", rev: 5, live: true, wantDrop: true, wantLive: true},
			{do: "lost", wantLive: false},
			{do: "observe", rev: 7, live: true, wantDrop: true, wantLive: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var g gate
			var epoch uint64
			for i, s := range tt.steps {
				switch s.do {
				case "observe":
					if drop := g.Observe(s.rev, s.live); drop != s.wantDrop {
						t.Fatalf("step %d: Observe(%d, %v) drop = %v; want %v", i, s.rev, s.live, drop, s.wantDrop)
					}
				case "lost":
					g.Lost()
				case "begin":
					epoch = g.Epoch()
					continue
				case "keep":
					if keep := g.Keep(s.rev, epoch); keep != s.wantKeep {
						t.Fatalf("step %d: Keep(%d) = %v; want %v", i, s.rev, keep, s.wantKeep)
					}
				}
				if g.Live() != s.wantLive {
					t.Fatalf("step %d (%s): Live = %v; want %v", i, s.do, g.Live(), s.wantLive)
				}
			}
		})
	}
}
