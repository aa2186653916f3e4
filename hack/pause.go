// The sandbox ("pause") process of every Pod on the local node (hack/node.py): it holds the Pod's
// namespaces open and does nothing else. Kubernetes' own pause image cannot be pulled here, so
// hack/build-tools.sh builds this static binary and hack/base-image.sh wraps it in a one-layer image.
// Like the upstream pause.c: exit on SIGINT/SIGTERM, reap zombies (it is PID 1 when the Pod
// shares its process namespace).
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var status syscall.WaitStatus
			if pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil); pid <= 0 || err != nil {
				break
			}
		}
	}
}
