//go:build creditknobs

package ipc

import (
	"os"
	"strconv"
	"strings"
)

// A measuring build's switches (go build -tags creditknobs):
// IPCFRAME_CREDIT names, comma-separated, the credit variants to turn on:
// "flush" (grantFlushBeside, window.go), "step64" (besideStep 64 KiB),
// "batch" (longBatchBeside, pipe.go), "win=K" and "step=K" (besideWin,
// besideStep in KiB).
func init() {
	for _, k := range strings.Split(os.Getenv("IPCFRAME_CREDIT"), ",") {
		switch k {
		case "flush":
			grantFlushBeside = true
		case "step64":
			besideStep = 64 << 10
		case "batch":
			longBatchBeside = true
		default:
			// win=K, step=K: besideWin, besideStep in KiB.
			if v, ok := strings.CutPrefix(k, "win="); ok {
				n, _ := strconv.Atoi(v)
				besideWin = int64(n) << 10
			}
			if v, ok := strings.CutPrefix(k, "step="); ok {
				n, _ := strconv.Atoi(v)
				besideStep = int64(n) << 10
			}
		}
	}
}
