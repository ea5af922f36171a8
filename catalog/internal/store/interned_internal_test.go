package store

import "testing"

func TestInterned(t *testing.T) {
	tests := []struct {
		name      string
		one       string
		set       []string
		value     []byte
		want      string
		wantErr   bool
		wantAlloc bool
	}{
		{name: "the one string", one: "civic-2023", value: []byte("civic-2023"), want: "civic-2023"},
		{name: "another car", one: "civic-2023", value: []byte("civic-2024"), want: "civic-2024", wantAlloc: true},
		{name: "a known category", set: categories, value: []byte("hybrid_system"), want: "hybrid_system"},
		{name: "the first category", set: categories, value: []byte("chassis"), want: "chassis"},
		{name: "an unknown category", set: categories, value: []byte("turbo"), want: "turbo", wantAlloc: true},
		{name: "a prefix of a known one", set: categories, value: []byte("hood_"), want: "hood_", wantAlloc: true},
		{name: "empty, none known", value: []byte{}, want: ""},
		{name: "no one string given", one: "", value: []byte("xyz"), want: "xyz", wantAlloc: true},
		{name: "NULL", one: "BRL", value: nil, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			err := (&interned{&got, tt.one, tt.set}).ScanBytes(tt.value)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ScanBytes(%q) error %v, want error %v", tt.value, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if got != tt.want {
				t.Fatalf("ScanBytes(%q) = %q, want %q", tt.value, got, tt.want)
			}
			// The string must not alias the driver's buffer, which the
			// next row overwrites.
			for i := range tt.value {
				tt.value[i] = '#'
			}
			if got != tt.want {
				t.Fatalf("after the buffer changed, the scanned string is %q, want %q", got, tt.want)
			}
			buf := []byte(tt.want)
			in := &interned{&got, tt.one, tt.set}
			allocs := testing.AllocsPerRun(50, func() { _ = in.ScanBytes(buf) })
			if (allocs > 0) != tt.wantAlloc {
				t.Errorf("ScanBytes(%q): %v allocations, want allocation %v", tt.want, allocs, tt.wantAlloc)
			}
		})
	}
}
