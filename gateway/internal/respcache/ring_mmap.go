//go:build linux || darwin

package respcache

import "syscall"

// newRing returns n bytes of anonymous memory outside the Go heap, so that
// the garbage collector neither scans it nor counts it towards its next
// target; pages take memory only once written. It falls back to the heap
// when the mapping fails.
func newRing(n int) []byte {
	if n <= 0 {
		return nil
	}
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]byte, n)
	}
	return b
}

// freeRing returns a ring from newRing to the system.
func freeRing(b []byte) {
	if b != nil {
		_ = syscall.Munmap(b) // not mapped (heap fallback): nothing to do
	}
}
