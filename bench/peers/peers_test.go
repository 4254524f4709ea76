package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// windowHoldLimit is how long past its time holdWindows keeps a window
// open at most: a hang guard, not a bound. A peer that completes nothing
// then ends the window with nothing measured, and the test fails.
const windowHoldLimit = 60 * time.Second

// holdWindows holds each echo and stream window of the test open past its
// time until it measured one call or one byte (testHookWindowDone), so that
// the test does not depend on the process getting CPU within the window's
// wall time (a loaded CI machine can starve it for longer than a window).
func holdWindows(t *testing.T) {
	t.Helper()
	testHookWindowDone = func(measured int64, overtime time.Duration) bool {
		return measured > 0 || overtime >= windowHoldLimit
	}
	t.Cleanup(func() { testHookWindowDone = nil })
}

// TestSystems runs every registered peer (the opt-in TLS variants too)
// briefly through both workloads, in this process: a smoke test that
// adapters answer correctly, not a benchmark.
func TestSystems(t *testing.T) {
	holdWindows(t)
	sys, err := selectSystems(strings.Join(knownNames(), ","))
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
	holdWindows(t)
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

// TestSelectAllLeavesOutTLS: "all" is the plain peers; the TLS variants
// run when named.
func TestSelectAllLeavesOutTLS(t *testing.T) {
	sys, err := selectSystems("all")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sys {
		if strings.HasSuffix(s.Name(), "-tls") {
			t.Errorf("all selects %s", s.Name())
		}
	}
	sys, err = selectSystems("ipcframe-tls,grpc-tls")
	if err != nil || len(sys) != 2 {
		t.Fatalf("selecting the TLS peers: %v, %v", sys, err)
	}
}

// TestConnWorkload: every TLS connector (and the std ceiling) opens
// connections that echo; without a session cache no handshake resumes,
// with one every measured handshake does (the warm-up primed the cache).
// Plain ipcframe runs the full mode only.
func TestConnWorkload(t *testing.T) {
	for _, name := range []string{stdTLSName, "ipcframe-tls", "grpc-tls", "ipcframe"} {
		for _, resume := range []bool{false, true} {
			if name == "ipcframe" && resume {
				_, _, err := connectorFor(name, "127.0.0.1:1", true)
				if !errors.Is(err, errUnsupported) {
					t.Errorf("plain ipcframe resumed: %v, want errUnsupported", err)
				}
				continue
			}
			t.Run(fmt.Sprintf("%s/resume=%v", name, resume), func(t *testing.T) {
				r, err := withServer(name, false, func(s *runningServer) (ConnResult, error) {
					connect, done, err := connectorFor(name, s.addr, resume)
					if err != nil {
						return ConnResult{}, err
					}
					defer done()
					return runConn(connect, randomPayload(1000), 20*time.Millisecond, 50*time.Millisecond)
				})
				if err != nil {
					t.Fatal(err)
				}
				want := 0.0
				if resume {
					want = 1
				}
				if r.Conns < 2 || r.ResumedShare != want {
					t.Fatalf("%d connections, %.2f resumed, want %.0f", r.Conns, r.ResumedShare, want)
				}
			})
		}
	}
}
