package main

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// This machine is shared: other work (builds, tests, fuzzing) may run during
// a measurement. Each measured window records how busy the CPUs were with
// work outside this process, so that a noisy point can be recognised.

// clockTick is USER_HZ, the unit of /proc/stat; 100 on Linux.
const clockTick = 100

// machineBusy returns the CPU time all CPUs have spent busy (not idle and
// not waiting for I/O) since boot, read from /proc/stat. ok is false when
// /proc/stat is unavailable.
func machineBusy() (busy time.Duration, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, false
	}
	var total uint64
	for i, s := range f[1:] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, false
		}
		// Fields: user nice system idle iowait irq softirq steal ...
		// guest and guest_nice (8, 9) are already included in user and nice.
		if i == 3 || i == 4 || i >= 8 {
			continue
		}
		total += v
	}
	return time.Duration(total) * time.Second / clockTick, true
}

// loadAvg returns /proc/loadavg's first three fields, or "" if unavailable.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// idleSample is the window over which waitIdle samples machine load.
const idleSample = 250 * time.Millisecond

// waitIdle waits, up to limit, until the machine's CPUs are busy less than
// below (0..1) over one idleSample, and returns the last sampled share.
// Call it between points, when this process itself is (nearly) idle.
func waitIdle(limit time.Duration, below float64) float64 {
	deadline := time.Now().Add(limit)
	for {
		b0, ok := machineBusy()
		t0 := time.Now()
		time.Sleep(idleSample)
		b1, ok1 := machineBusy()
		if !ok || !ok1 {
			return -1
		}
		share := (b1 - b0).Seconds() / (time.Since(t0).Seconds() * float64(numCPU()))
		if share < below || time.Now().After(deadline) {
			return share
		}
	}
}

func numCPU() int { return runtime.NumCPU() }

// childCPU, when set, returns the CPU time used so far by the server child
// of -twoproc; cost windows subtract it from "other CPU" and report it as
// server CPU. It is set and cleared by the (single) orchestrating goroutine
// between points, never while a measurement runs.
var childCPU func() (time.Duration, bool)

// procCPU returns the user+system CPU time of process pid from
// /proc/PID/stat.
func procCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// split after its closing parenthesis. utime and stime are fields 14
	// and 15, that is, 12th and 13th after the state field.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(u+st) * time.Second / clockTick, true
}
