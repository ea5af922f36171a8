package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// splitCPUs divides the CPUs this process may use between the stack (the
// first) and the load generator (the others), for -pin: on a small machine
// a generator that shares the stack's CPUs cannot offer several times the
// stack's saturation, because the stack's own work starves it.
func splitCPUs() (stack string, gen unix.CPUSet, err error) {
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		return "", gen, fmt.Errorf("-pin: %w", err)
	}
	first := -1
	for cpu := range 1024 {
		if !all.IsSet(cpu) {
			continue
		}
		if first < 0 {
			first = cpu
			continue
		}
		gen.Set(cpu)
	}
	if gen.Count() == 0 {
		return "", gen, errors.New("-pin needs at least 2 CPUs (one for the stack, the rest for the generator)")
	}
	return strconv.Itoa(first), gen, nil
}

// pinSelf moves every thread of this process to set (new threads inherit
// it from the thread that makes them) and sizes GOMAXPROCS to it.
func pinSelf(set unix.CPUSet) error {
	// Twice: a thread started while the first pass ran may have been
	// made by a thread not yet moved.
	for range 2 {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("-pin: %w", err)
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("-pin: thread %d: %w", tid, err)
			}
		}
	}
	runtime.GOMAXPROCS(set.Count())
	return nil
}
