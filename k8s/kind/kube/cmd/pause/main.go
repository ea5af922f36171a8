// Command pause is the pod sandbox's PID 1 for the offline Kind node image:
// the upstream pause image is a C program that cannot be pulled here. Like it,
// it sleeps until SIGINT/SIGTERM and reaps zombies (it may be the PID
// namespace's init when pods share a process namespace).
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
