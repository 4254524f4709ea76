// Package prometheus exports an ipc.Service's statistics (ipc.Stats) as
// Prometheus metrics. It is a module of its own, so that programs that do
// not use Prometheus do not depend on its client library; the core offers
// Service.Stats and Service.PublishExpvar.
//
// Register one Collector per service; give each its own constant labels
// (for example service="frontend") when a process runs several. Metrics,
// all under the namespace "ipcframe":
//
//	messages_sent_total, messages_received_total     counters
//	bytes_sent_total, bytes_received_total           counters (packet bytes)
//	completions_total{outcome}                       counter: ok, canceled,
//	                                                 canceled_by_peer,
//	                                                 connection, encode, other
//	inflight_messages                                gauge
//	connections_opened_total{side}                   counter: accepted, dialed
//	connections_closed_total{cause}                  counter: local, peer,
//	                                                 timeout, protocol, other
//	connections_open                                 gauge
//	keepalives_sent_total, keepalives_received_total counters
//	resends_total, cancels_total                     counters
//	resolutions_total{outcome}                       counter: ok, failed
//	resolver_bad_addresses_total,
//	resolver_address_changes_total,
//	resolver_retired_connections_total               counters
//	pool_queued_messages{pool}                       gauge
//	pool_connections{pool,state}                     gauge: active, passive,
//	                                                 pending, idle
//	pool_dials_total{pool}, pool_dial_failures_total{pool} counters
//	pool_addresses{pool}                             gauge: resolved addresses
//	pool_messages_sent_total{pool}, pool_messages_received_total{pool},
//	pool_bytes_sent_total{pool}, pool_bytes_received_total{pool} counters
//
// Per-connection counters (ipc.Stats.Conns) are not exported: one label
// value per connection would grow without bound.
package prometheus

import (
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/prometheus/client_golang/prometheus"
)

const namespace = "ipcframe"

// Collector is a prometheus.Collector for one service. Each scrape takes
// one ipc.Stats snapshot.
type Collector struct {
	svc *ipc.Service

	msgsSent, msgsRecv, bytesSent, bytesRecv *prometheus.Desc
	completions, inflight                    *prometheus.Desc
	opened, closed, open                     *prometheus.Desc
	rejected, firstPacket                    *prometheus.Desc
	kaSent, kaRecv, resends, cancels         *prometheus.Desc
	poolQueued, poolConns                    *prometheus.Desc
	poolDials, poolDialFailures              *prometheus.Desc
	poolMsgsSent, poolMsgsRecv               *prometheus.Desc
	poolBytesSent, poolBytesRecv             *prometheus.Desc
	resolutions, resolveBad                  *prometheus.Desc
	resolveChanges, resolveRetired           *prometheus.Desc
	poolAddrs                                *prometheus.Desc
}

// NewCollector returns a Collector of svc's statistics; constLabels (may
// be nil) are added to every metric.
func NewCollector(svc *ipc.Service, constLabels prometheus.Labels) *Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, labels, constLabels)
	}
	return &Collector{
		svc:              svc,
		msgsSent:         d("messages_sent_total", "Messages fully written to connections."),
		msgsRecv:         d("messages_received_total", "Messages fully received from connections."),
		bytesSent:        d("bytes_sent_total", "Packet bytes written to connections."),
		bytesRecv:        d("bytes_received_total", "Packet bytes read from connections."),
		completions:      d("completions_total", "Completed sends by outcome.", "outcome"),
		inflight:         d("inflight_messages", "Accepted sends not yet completed."),
		opened:           d("connections_opened_total", "Connections opened, by side.", "side"),
		closed:           d("connections_closed_total", "Connections closed, by cause.", "cause"),
		open:             d("connections_open", "Connections open now."),
		rejected:         d("connections_rejected_total", "Connections accepted beyond MaxAcceptedConnections and closed at once."),
		firstPacket:      d("connections_first_packet_timeouts_total", "Accepted connections closed for sending no complete packet within FirstPacketTimeout (also counted as closed by timeout)."),
		kaSent:           d("keepalives_sent_total", "KeepAlive packets sent."),
		kaRecv:           d("keepalives_received_total", "KeepAlive packets received."),
		resends:          d("resends_total", "Messages queued again after their connection failed."),
		cancels:          d("cancels_total", "Cancels that reached a message not yet completed."),
		poolQueued:       d("pool_queued_messages", "Messages waiting in a pool's queue for a connection.", "pool"),
		poolConns:        d("pool_connections", "A pool's connections by state.", "pool", "state"),
		poolDials:        d("pool_dials_total", "A pool's connection attempts.", "pool"),
		poolDialFailures: d("pool_dial_failures_total", "A pool's failed connection attempts.", "pool"),
		poolMsgsSent:     d("pool_messages_sent_total", "Messages a pool's connections wrote.", "pool"),
		poolMsgsRecv:     d("pool_messages_received_total", "Messages a pool's connections received.", "pool"),
		poolBytesSent:    d("pool_bytes_sent_total", "Packet bytes a pool's connections wrote.", "pool"),
		poolBytesRecv:    d("pool_bytes_received_total", "Packet bytes a pool's connections read.", "pool"),
		resolutions:      d("resolutions_total", "Name resolutions of the pools, by outcome.", "outcome"),
		resolveBad:       d("resolver_bad_addresses_total", "Invalid or excess entries dropped from resolver answers."),
		resolveChanges:   d("resolver_address_changes_total", "Resolver answers that changed a pool's addresses."),
		resolveRetired:   d("resolver_retired_connections_total", "Connections retired because their address left the answer."),
		poolAddrs:        d("pool_addresses", "Addresses of a pool's last good resolver answer.", "pool"),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.msgsSent, c.msgsRecv, c.bytesSent, c.bytesRecv, c.completions, c.inflight,
		c.opened, c.closed, c.open, c.rejected, c.firstPacket, c.kaSent, c.kaRecv, c.resends, c.cancels,
		c.poolQueued, c.poolConns, c.poolDials, c.poolDialFailures,
		c.poolMsgsSent, c.poolMsgsRecv, c.poolBytesSent, c.poolBytesRecv,
		c.resolutions, c.resolveBad, c.resolveChanges, c.resolveRetired, c.poolAddrs,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.svc.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter(c.msgsSent, st.MessagesSent)
	counter(c.msgsRecv, st.MessagesReceived)
	counter(c.bytesSent, st.BytesSent)
	counter(c.bytesRecv, st.BytesReceived)
	k := st.Completions
	counter(c.completions, k.OK, "ok")
	counter(c.completions, k.Canceled, "canceled")
	counter(c.completions, k.CanceledByPeer, "canceled_by_peer")
	counter(c.completions, k.Connection, "connection")
	counter(c.completions, k.Encode, "encode")
	counter(c.completions, k.Other, "other")
	gauge(c.inflight, float64(st.InFlight))
	n := st.Connections
	counter(c.opened, n.Accepted, "accepted")
	counter(c.opened, n.Dialed, "dialed")
	counter(c.closed, n.ClosedLocal, "local")
	counter(c.closed, n.ClosedByPeer, "peer")
	counter(c.closed, n.ClosedTimeout, "timeout")
	counter(c.closed, n.ClosedProtocol, "protocol")
	counter(c.closed, n.ClosedOther, "other")
	gauge(c.open, float64(n.Open()))
	counter(c.rejected, n.Rejected)
	counter(c.firstPacket, n.FirstPacketTimeouts)
	counter(c.kaSent, st.KeepAlivesSent)
	counter(c.kaRecv, st.KeepAlivesReceived)
	counter(c.resends, st.Resends)
	counter(c.cancels, st.Cancels)
	r := st.Resolver
	counter(c.resolutions, r.Resolutions, "ok")
	counter(c.resolutions, r.Failures, "failed")
	counter(c.resolveBad, r.BadAddresses)
	counter(c.resolveChanges, r.Changes)
	counter(c.resolveRetired, r.Retired)
	for _, p := range st.Pools {
		gauge(c.poolQueued, float64(p.Queued), p.Name)
		gauge(c.poolConns, float64(p.Active), p.Name, "active")
		gauge(c.poolConns, float64(p.Passive), p.Name, "passive")
		gauge(c.poolConns, float64(p.Pending), p.Name, "pending")
		gauge(c.poolConns, float64(p.Idle), p.Name, "idle")
		counter(c.poolDials, p.Dials, p.Name)
		counter(c.poolDialFailures, p.DialFailures, p.Name)
		gauge(c.poolAddrs, float64(len(p.Addresses)), p.Name)
		t := st.PoolTraffic[p.Name]
		counter(c.poolMsgsSent, t.MessagesSent, p.Name)
		counter(c.poolMsgsRecv, t.MessagesReceived, p.Name)
		counter(c.poolBytesSent, t.BytesSent, p.Name)
		counter(c.poolBytesRecv, t.BytesReceived, p.Name)
	}
}
