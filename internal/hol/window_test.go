package hol

import (
	"context"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/ipc"
)

// holdUntil sets TestHookWindowDone to hold each window until it measured
// want, recording what it was asked, and clears it at the test's end.
func holdUntil(t *testing.T, want int64) (asked func() (calls int, firstOvertime time.Duration, last int64)) {
	t.Helper()
	var (
		calls int
		first time.Duration
		last  int64
	)
	TestHookWindowDone = func(measured int64, overtime time.Duration) bool {
		if calls == 0 {
			first = overtime
		}
		calls++
		last = measured
		return measured >= want
	}
	t.Cleanup(func() { TestHookWindowDone = nil })
	return func() (int, time.Duration, int64) { return calls, first, last }
}

// TestWindowHeldUntilMeasured gives OneWay and RawTCP windows of no time
// at all, which alone measure nothing (rate 0), and checks that
// TestHookWindowDone holds them open until they measured what it asks for:
// the hook the cmd/bench tests use so that a starved process still
// measures within each window.
func TestWindowHeldUntilMeasured(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // hang guard
	defer cancel()

	t.Run("RawTCP", func(t *testing.T) {
		asked := holdUntil(t, 3)
		mb, err := RawTCP(ctx, 64<<10, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		calls, first, last := asked()
		if mb <= 0 || calls == 0 || first != 0 || last < 3 {
			t.Fatalf("rate %v MB/s, hook asked %d times (first at overtime %v), last with %d writes", mb, calls, first, last)
		}
	})

	t.Run("OneWay", func(t *testing.T) {
		sp := ServerProtocol()
		RegisterBulk(sp, true)
		server, err := ipc.NewService(ipc.Config{Protocol: sp, Listen: "127.0.0.1:0"})
		if err != nil {
			t.Fatal(err)
		}
		if err := server.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = server.Stop(context.Background()) })
		cp := ClientProtocol()
		RegisterBulk(cp, false)
		client, err := ipc.NewService(ipc.Config{Protocol: cp})
		if err != nil {
			t.Fatal(err)
		}
		if err := client.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = client.Stop(context.Background()) })

		asked := holdUntil(t, 2)
		mb, err := OneWay(ctx, client, server.Addr().String(), 64<<10, 2, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		calls, first, last := asked()
		if mb <= 0 || calls == 0 || first != 0 || last < 2 {
			t.Fatalf("rate %v MB/s, hook asked %d times (first at overtime %v), last with %d messages", mb, calls, first, last)
		}
	})
}
