package prometheus_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/ipcframe/ipcframe/ipc"
	ipcprom "github.com/ipcframe/ipcframe/metrics/prometheus"
	"github.com/ipcframe/ipcframe/serde"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Ping is the example's message.
type Ping struct{ N uint64 }

// Serde lists Ping's fields.
func (p *Ping) Serde(v *serde.Visitor) { v.Uint64(&p.N) }

// Serve a client service's metrics at /metrics, make one call, and scrape.
func ExampleNewCollector() {
	sp := ipc.NewProtocol()
	ipc.MustRegister(sp, 1, func(ctx ipc.Context, p *Ping) { _ = ctx.Respond(p) })
	server, _ := ipc.NewService(ipc.Config{Protocol: sp, Listen: "127.0.0.1:0"})
	_ = server.Start()
	defer server.Stop(context.Background())
	cp := ipc.NewProtocol()
	ipc.MustRegister[Ping](cp, 1, nil)
	client, _ := ipc.NewService(ipc.Config{Protocol: cp})
	_ = client.Start()
	defer client.Stop(context.Background())

	reg := prometheus.NewRegistry()
	reg.MustRegister(ipcprom.NewCollector(client, prometheus.Labels{"service": "client"}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()

	if _, err := ipc.Call[Ping, Ping](context.Background(), client, server.Addr().String(), &Ping{N: 1}, 0); err != nil {
		fmt.Println(err)
		return
	}
	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "ipcframe_completions_total{outcome=\"ok\"") ||
			strings.HasPrefix(line, "ipcframe_connections_opened_total{service=\"client\",side=\"dialed\"}") {
			fmt.Println(line)
		}
	}
	// Output:
	// ipcframe_completions_total{outcome="ok",service="client"} 1
	// ipcframe_connections_opened_total{service="client",side="dialed"} 1
}
