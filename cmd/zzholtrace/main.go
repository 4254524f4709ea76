package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"runtime/trace"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipcframe/ipcframe/internal/hol"
	"github.com/ipcframe/ipcframe/ipc"
)

func main() {
	echo := flag.Bool("echo", true, "")
	out := flag.String("trace", "", "")
	dur := flag.Duration("d", time.Second, "")
	flag.Parse()
	base := time.Now()
	sp := ipc.NewProtocol()
	ipc.MustRegister(sp, 1, func(ctx ipc.Context, m *hol.SmallMsg) {
		binary.LittleEndian.PutUint64(m.Data[8:], uint64(time.Since(base)))
		_ = ctx.Respond(m)
	})
	ipc.MustRegister(sp, 2, func(ctx ipc.Context, m *hol.BulkEchoMsg) { _ = ctx.Respond(m) })
	ipc.MustRegister(sp, 3, func(ctx ipc.Context, m *hol.BulkMsg) {})
	server, _ := ipc.NewService(ipc.Config{Protocol: sp, Listen: "127.0.0.1:0"})
	server.Start()
	client, _ := ipc.NewService(ipc.Config{Protocol: hol.ClientProtocol()})
	client.Start()
	c := &hol.IPC{Svc: client, Addr: server.Addr().String(), BulkEcho: *echo}
	ctx := context.Background()
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p := make([]byte, 16<<20)
		for !stop.Load() {
			c.Bulk(ctx, p)
		}
	}()
	time.Sleep(200 * time.Millisecond)
	if *out != "" {
		f, _ := os.Create(*out)
		trace.Start(f)
		defer f.Close()
	}
	var lats, legReq, legResp, legWake []time.Duration
	p := make([]byte, 1024)
	end := time.Now().Add(*dur)
	for time.Now().Before(end) {
		t0 := time.Now()
		r := trace.StartRegion(ctx, "small")
		done := make(chan time.Duration, 1)
		var srv time.Duration
		ipc.SendRequestContext(ctx, client, c.Addr, &hol.SmallMsg{Data: p}, 0,
			func(_, resp *hol.SmallMsg, err error) {
				srv = time.Duration(binary.LittleEndian.Uint64(resp.Data[8:]))
				done <- time.Since(base)
			})
		cb := <-done
		r.End()
		now := time.Since(base)
		s0 := t0.Sub(base)
		lats = append(lats, now-s0)
		legReq = append(legReq, srv-s0)
		legResp = append(legResp, cb-srv)
		legWake = append(legWake, now-cb)
	}
	if *out != "" {
		trace.Stop()
	}
	stop.Store(true)
	wg.Wait()
	for _, x := range []struct {
		n string
		l []time.Duration
	}{{"total", lats}, {"request", legReq}, {"response", legResp}, {"wake", legWake}} {
		l := x.l
		slices.Sort(l)
		n := len(l)
		fmt.Printf("%-8s calls %d p50 %v p90 %v p99 %v max %v\n", x.n, n, l[n/2], l[n*9/10], l[n*99/100], l[n-1])
	}
}
