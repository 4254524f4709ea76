package prometheus_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/ipc"
	ipcprom "github.com/ipcframe/ipcframe/metrics/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestScrape serves a client's metrics over HTTP, makes 20 calls and one
// canceled call, then scrapes /metrics and checks the values, and lints
// the collector's metrics.
func TestScrape(t *testing.T) {
	held := make(chan ipc.Context, 1)
	sp := ipc.NewProtocol()
	ipc.MustRegister(sp, 1, func(ctx ipc.Context, p *Ping) {
		if p.N == 99 {
			held <- ctx
			return
		}
		_ = ctx.Respond(p)
	})
	server := start(t, ipc.Config{Protocol: sp, Listen: "127.0.0.1:0"})
	cp := ipc.NewProtocol()
	ipc.MustRegister[Ping](cp, 1, nil)
	client := start(t, ipc.Config{Protocol: cp})
	addr := server.Addr().String()

	coll := ipcprom.NewCollector(client, nil)
	reg := prometheus.NewRegistry()
	if err := reg.Register(coll); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer hs.Close()

	for i := range 20 {
		if _, err := ipc.Call[Ping, Ping](context.Background(), client, addr, &Ping{N: uint64(i)}, 0); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() {
		_, err := ipc.Call[Ping, Ping](ctx, client, addr, &Ping{N: 99}, 0)
		res <- err
	}()
	<-held
	cancel()
	<-res

	resp, err := http.Get(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name   string
		labels map[string]string
		value  float64
	}{
		{"ipcframe_completions_total", map[string]string{"outcome": "ok"}, 20},
		{"ipcframe_completions_total", map[string]string{"outcome": "canceled"}, 1},
		{"ipcframe_completions_total", map[string]string{"outcome": "connection"}, 0},
		{"ipcframe_messages_sent_total", nil, 21},
		{"ipcframe_messages_received_total", nil, 20},
		{"ipcframe_cancels_total", nil, 1},
		{"ipcframe_inflight_messages", nil, 0},
		{"ipcframe_connections_opened_total", map[string]string{"side": "dialed"}, 1},
		{"ipcframe_connections_open", nil, 1},
		{"ipcframe_pool_connections", map[string]string{"pool": addr, "state": "active"}, 1},
		{"ipcframe_pool_queued_messages", map[string]string{"pool": addr}, 0},
		{"ipcframe_pool_addresses", map[string]string{"pool": addr}, 1},
		{"ipcframe_resolutions_total", map[string]string{"outcome": "ok"}, 1},
		{"ipcframe_resolutions_total", map[string]string{"outcome": "failed"}, 0},
		{"ipcframe_pool_messages_sent_total", map[string]string{"pool": addr}, 21},
		{"ipcframe_pool_messages_received_total", map[string]string{"pool": addr}, 20},
	}
	for _, w := range want {
		got, ok := find(fams[w.name], w.labels)
		if !ok {
			t.Errorf("%s%v: not scraped", w.name, w.labels)
			continue
		}
		if got != w.value {
			t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.value)
		}
	}
	problems, err := testutil.CollectAndLint(coll)
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range problems {
		t.Errorf("lint: %s: %s", pr.Metric, pr.Text)
	}
}

// find returns the value of the metric of fam whose labels include want.
func find(fam *dto.MetricFamily, want map[string]string) (float64, bool) {
	if fam == nil {
		return 0, false
	}
next:
	for _, m := range fam.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

func start(t *testing.T, cfg ipc.Config) *ipc.Service {
	t.Helper()
	s, err := ipc.NewService(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Stop(ctx)
	})
	return s
}
