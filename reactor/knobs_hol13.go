package reactor

import (
	"os"
	"strconv"
	"strings"
)

// Temporary experiment switches (hol13), read from IPCFRAME_HOL13:
// "all" small spins beside bulk back off too; "noyield" spins during a
// backoff without sched_yield instead of being skipped; "yb=N" Gosched
// per N bytes of large transfers (-1: never).
var (
	knobBackoffAll bool
	knobNoOSYield  bool
	knobYieldBytes int
)

func init() {
	for _, f := range strings.Split(os.Getenv("IPCFRAME_HOL13"), ",") {
		switch {
		case f == "all":
			knobBackoffAll = true
		case f == "noyield":
			knobNoOSYield = true
		case strings.HasPrefix(f, "yb="):
			knobYieldBytes, _ = strconv.Atoi(f[3:])
		}
	}
}
