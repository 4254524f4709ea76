package main

import (
	"bytes"
	"context"
	"math"
	"testing"
	"time"
)

// TestSystems runs every registered peer briefly through both workloads, in
// this process: a smoke test that adapters answer correctly, not a benchmark.
func TestSystems(t *testing.T) {
	sys, err := selectSystems("all")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sys {
		t.Run(s.Name(), func(t *testing.T) {
			srv, err := startServer(s.Name(), false)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(srv.stop)
			c, err := s.Dial(srv.addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			payload := randomPayload(1000)
			resp, err := c.Call(ctx, payload)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(resp, payload) {
				t.Fatalf("echo returned %d bytes that differ from the %d sent", len(resp), len(payload))
			}
			if err := c.Sink(ctx, randomPayload(1<<20)); err != nil {
				t.Fatal(err)
			}
			if _, ok := s.(bulkOnly); ok {
				return
			}
			r, err := runEcho(c, 8, payload, 50*time.Millisecond, 200*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			if r.Ops == 0 || r.Errors != 0 {
				t.Fatalf("ops %d, errors %d (%s)", r.Ops, r.Errors, r.Err)
			}
		})
	}
}

func TestCeilings(t *testing.T) {
	pp, err := withServer("pingpong", false, func(s *runningServer) (PingPongResult, error) {
		return runPingPong(s.addr, 20*time.Millisecond, 100*time.Millisecond)
	})
	if err != nil || pp.RTs == 0 {
		t.Fatalf("ping-pong: %+v, %v", pp, err)
	}
	st, err := withServer("stream", false, func(s *runningServer) (StreamResult, error) {
		return runStream(s.addr, 20*time.Millisecond, 100*time.Millisecond, s.count)
	})
	if err != nil || st.Bytes == 0 {
		t.Fatalf("stream: %+v, %v", st, err)
	}
}

func TestStatOf(t *testing.T) {
	for _, tc := range []struct {
		in          []float64
		med, lo, hi float64
	}{
		{[]float64{3, 1, 2}, 2, 1, 3},
		{[]float64{4, 1, 3, 2}, 2.5, 1, 4},
		{[]float64{7}, 7, 7, 7},
	} {
		got := statOf(tc.in)
		if got.med != tc.med || got.lo != tc.lo || got.hi != tc.hi {
			t.Errorf("statOf(%v) = %+v, want med %v lo %v hi %v", tc.in, got, tc.med, tc.lo, tc.hi)
		}
	}
	if s := statOf(nil); !math.IsNaN(s.med) {
		t.Errorf("statOf(nil).med = %v, want NaN", s.med)
	}
}

func TestProcCPU(t *testing.T) {
	if _, ok := machineBusy(); !ok {
		t.Skip("no /proc/stat")
	}
	if _, ok := procCPU(1); !ok {
		t.Error("procCPU(1) failed")
	}
}
