package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sys/unix"
)

// splitCPUs divides the CPUs this process may use between the stack (the
// first) and the load generator (the others), for -pin: on a small machine
// a generator that shares the stack's CPUs cannot offer several times the
// stack's saturation, because the stack's own work starves it.
func splitCPUs() (stack int, gen unix.CPUSet, err error) {
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		return 0, gen, fmt.Errorf("-pin: %w", err)
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
		return 0, gen, errors.New("-pin needs at least 2 CPUs (one for the stack, the rest for the generator)")
	}
	return first, gen, nil
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

// pinServer moves every process of the PostgreSQL server at databaseURL to
// the stack's CPU and returns how many it moved. Only for a server the bench
// booted itself (-durable-db): the database is part of the system under
// test, and left on every CPU it takes the generator's. Backends started
// later are forked by the postmaster and inherit its CPU.
func pinServer(ctx context.Context, databaseURL string, cpu int) (int, error) {
	var set unix.CPUSet
	set.Set(cpu)
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return 0, fmt.Errorf("-pin: the database: %w", err)
	}
	defer conn.Close(context.Background())
	pids, ok := serverPIDs(ctx, conn)
	if !ok {
		return 0, errors.New("-pin: the database server's processes are not on this machine")
	}
	for _, pid := range pids {
		if err := unix.SchedSetaffinity(pid, &set); err != nil && !errors.Is(err, unix.ESRCH) {
			return 0, fmt.Errorf("-pin: database process %d: %w", pid, err)
		}
	}
	return len(pids), nil
}
