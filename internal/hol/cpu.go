package hol

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user and system) the whole process has used so
// far: client, server and driver together, as the windows share one process.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
