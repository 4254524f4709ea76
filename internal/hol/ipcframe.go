package hol

import (
	"context"

	"github.com/ipcframe/ipcframe/ipc"
	"github.com/ipcframe/ipcframe/serde"
)

// The message types of the ipcframe client, written as a user writes them:
// a plain []byte field, no ipc.Recyclable.

// SmallMsg is the small call, echoed by the server.
type SmallMsg struct{ Data []byte }

// Serde implements serde.Type.
func (m *SmallMsg) Serde(v *serde.Visitor) { v.Bytes(&m.Data) }

// BulkEchoMsg is a bulk message the server echoes.
type BulkEchoMsg struct{ Data []byte }

// Serde implements serde.Type.
func (m *BulkEchoMsg) Serde(v *serde.Visitor) { v.Bytes(&m.Data) }

// BulkMsg is a one-way bulk message.
type BulkMsg struct{ Data []byte }

// Serde implements serde.Type.
func (m *BulkMsg) Serde(v *serde.Visitor) { v.Bytes(&m.Data) }

// ServerProtocol returns the protocol of the head-of-line server: small
// calls and bulk echoes are answered with the received message, one-way
// bulk messages are dropped after receipt.
func ServerProtocol() *ipc.Protocol {
	p := ipc.NewProtocol()
	ipc.MustRegister(p, 1, func(ctx ipc.Context, m *SmallMsg) { _ = ctx.Respond(m) })
	ipc.MustRegister(p, 2, func(ctx ipc.Context, m *BulkEchoMsg) { _ = ctx.Respond(m) })
	ipc.MustRegister(p, 3, func(ctx ipc.Context, m *BulkMsg) {})
	return p
}

// ClientProtocol returns the protocol of the head-of-line client.
func ClientProtocol() *ipc.Protocol {
	p := ipc.NewProtocol()
	ipc.MustRegister[SmallMsg](p, 1, nil)
	ipc.MustRegister[BulkEchoMsg](p, 2, nil)
	ipc.MustRegister[BulkMsg](p, 3, nil)
	return p
}

// IPC is the ipcframe Client: each call is a SendRequestContext (or a
// SendContext for one-way bulk) whose callback hands the result to the
// waiting goroutine through a channel.
type IPC struct {
	Svc      *ipc.Service // a started client service with ClientProtocol
	Addr     string       // the server
	BulkEcho bool         // Bulk sends BulkEchoMsg requests instead of BulkMsg
}

// Small implements Client.
func (c *IPC) Small(ctx context.Context, p []byte) error {
	done := make(chan error, 1)
	_, err := ipc.SendRequestContext(ctx, c.Svc, c.Addr, &SmallMsg{Data: p}, 0,
		func(_, _ *SmallMsg, err error) { done <- err })
	if err != nil {
		return err
	}
	return <-done
}

// Bulk implements Client.
func (c *IPC) Bulk(ctx context.Context, p []byte) error {
	done := make(chan error, 1)
	var err error
	if c.BulkEcho {
		_, err = ipc.SendRequestContext(ctx, c.Svc, c.Addr, &BulkEchoMsg{Data: p}, 0,
			func(_, _ *BulkEchoMsg, err error) { done <- err })
	} else {
		_, err = c.Svc.SendContext(ctx, c.Addr, &BulkMsg{Data: p}, 0, func(err error) { done <- err })
	}
	if err != nil {
		return err
	}
	return <-done
}
