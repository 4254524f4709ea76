package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"runtime/trace"
)

// profiler writes a CPU profile (-cpuprofile) and an execution trace
// (-trace) of the whole run, for `go tool pprof` and `go tool trace`
// (docs/benchmarks.md uses both to find where a small call waits beside
// bulk transfers).
type profiler struct {
	cpu, tr *os.File
}

// startProfiles starts the profiles whose paths are set; stop ends them.
func startProfiles(cpuPath, tracePath string) (*profiler, error) {
	p := &profiler{}
	if cpuPath != "" {
		f, err := os.Create(cpuPath)
		if err != nil {
			return nil, fmt.Errorf("-cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("-cpuprofile: %w", err)
		}
		p.cpu = f
	}
	if tracePath != "" {
		f, err := os.Create(tracePath)
		if err != nil {
			p.stop()
			return nil, fmt.Errorf("-trace: %w", err)
		}
		if err := trace.Start(f); err != nil {
			_ = f.Close()
			p.stop()
			return nil, fmt.Errorf("-trace: %w", err)
		}
		p.tr = f
	}
	return p, nil
}

// stop ends the profiles and closes their files.
func (p *profiler) stop() error {
	var errs []error
	if p.cpu != nil {
		pprof.StopCPUProfile()
		errs = append(errs, p.cpu.Close())
		p.cpu = nil
	}
	if p.tr != nil {
		trace.Stop()
		errs = append(errs, p.tr.Close())
		p.tr = nil
	}
	return errors.Join(errs...)
}
