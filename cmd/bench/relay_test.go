package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestRelayCLI runs -mode relay briefly (the relay node a child process:
// this test binary, see TestMain) with a 16 MiB stream, and checks its JSON
// report: both echo legs answered without errors, the one-way legs moved
// data, the raw floor (-relay-floor) moved data direct and through both
// forwarders, and the stream's relay CPU and RSS samples are there.
func TestRelayCLI(t *testing.T) {
	holdWindow(t, 0, nil) // the echo legs, the one-way legs (hol.OneWay) and the floor's streams
	path := filepath.Join(t.TempDir(), "relay.json")
	var stdout, stderr bytes.Buffer
	err := run([]string{"-mode", "relay", "-concurrency", "1,4", "-size", "1000", "-duration", "400ms", "-warmup", "100ms",
		"-relay-oneway", "256K", "-relay-floor", "-relay-stream", "16M", "-quiet", "-json", path}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\nstderr: %s", err, stderr.String())
	}
	t.Logf("\n%s", stdout.String())
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rep RelayReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("JSON output does not parse: %v\n%s", err, b)
	}
	if rep.Mode != ModeRelay || rep.RelayBuffer != 64<<10 || len(rep.Echo) != 2 {
		t.Fatalf("report %+v", rep)
	}
	for i, e := range rep.Echo {
		if e.Concurrency != []int{1, 4}[i] {
			t.Errorf("echo %d: concurrency %d", i, e.Concurrency)
		}
		for _, r := range []Result{e.Direct, e.Relay} {
			if r.Requests <= 0 || r.Errors != 0 || r.Size != 1000 || r.Concurrency != e.Concurrency {
				t.Errorf("echo c=%d: %+v", e.Concurrency, r)
			}
		}
		if e.QPSRatio <= 0 {
			t.Errorf("echo c=%d: ratio %v", e.Concurrency, e.QPSRatio)
		}
	}
	ow := rep.OneWay
	if ow.Size != 256<<10 || ow.DirectMBps <= 0 || ow.RelayMBps <= 0 || ow.Ratio <= 0 || ow.RelayPeakRSSKiB <= 0 {
		t.Errorf("one way %+v", ow)
	}
	fl := rep.Floor
	if fl == nil || fl.DirectMBps <= 0 || fl.DirectEndsCPUPerGB < 0 || len(fl.Forwarded) != len(floorModes) {
		t.Fatalf("floor %+v", fl)
	}
	for i, h := range fl.Forwarded {
		if h.Mode != floorModes[i] || h.MBps <= 0 || h.Ratio <= 0 || h.FwdCPUPerGB < 0 || h.TotalCPUPerGB < h.EndsCPUPerGB {
			t.Errorf("floor through the forwarder: %+v", h)
		}
	}
	st := rep.Stream
	if st == nil || st.Size != 16<<20 || st.MBps <= 0 || st.RelayCPUPerGB < 0 || st.RelayPeakRSSKiB <= 0 {
		t.Fatalf("stream %+v", st)
	}
}
