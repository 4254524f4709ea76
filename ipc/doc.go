// Package ipc is ipcframe's message-passing service: typed Go messages
// exchanged over TCP through per-destination connection pools, on gnet event
// loops (package reactor), serialized one fixed-size buffer at a time
// (package serde) in SolidFrame mprpc's framing (docs/protocol.md).
//
// # Roles
//
// One type, [Service], plays both roles. With Config.Listen set it accepts
// connections; it dials any destination name ("host:port") it sends to,
// through one pool per name. Message types, each with a wire type id and an
// optional handler, are registered in a [Protocol]. [SolidFrameProfile]
// configures a service for C++ SolidFrame peers, and [GroupID] lets several
// protocols share one service (docs/interop.md).
//
// # Architecture
//
//	any goroutine                       event loop (one per core)
//	─────────────                       ───────────────────────────────────
//	Send/SendRequest ──► pool queue ──► conn.pull ──► writer (slots, round-robin)
//	  (mutex, bounded)      │ Wake          │              │ fill: packets into a batch
//	                        ▼               │              ▼
//	                   dial (goroutine) ──► reactor.Conn.Write ──► socket
//	Context.Respond ──► conn.direct ──────►┘
//	                                    socket ──► reader (slots by sender) ──►
//	                                      response: the request's callback
//	                                      otherwise: the type's handler
//
// A pool's queue holds messages until one of its connections has room; the
// connection's writer interleaves up to Config.MaxMultiplex messages, a
// buffer's worth at a time, so small messages pass large ones. Each
// connection belongs to one event loop, which owns its writer and reader:
// no lock is held across I/O and nothing blocks a loop. docs/architecture.md
// follows one message from Send to the socket and back.
//
// # Names that move
//
// A pool resolves its name with Config.Resolver ([SystemResolver] by
// default; [SRVResolver] for DNS SRV records; any service discovery as a
// [Resolver]), again every Config.ResolveInterval while it has connections
// and after failures (at most once per Config.MinResolveInterval). It
// dials new addresses and retires its connections to addresses that left
// the answer ([ErrAddressGone]); a failed or bad answer ([ErrResolve])
// leaves its addresses and connections as they were (docs/tuning.md 2.9b).
//
// # TLS
//
// Config.TLSServer makes the listener TLS-only; Config.TLSClient makes every
// dialed connection TLS, verifying the host part of the destination name.
// Handshakes run on short-lived goroutines (at most Config.MaxTLSHandshakes,
// each bounded by Config.TLSHandshakeTimeout); afterwards the event loop
// encrypts and decrypts, so a TLS connection costs no goroutine in steady
// state. A failed handshake closes only its connection with a named error
// (ErrTLSHandshake and, by cause, ErrTLSNotTLS, ErrTLSHandshakeTimeout,
// ErrTLSCertExpired, ErrTLSCertName, ErrTLSCertUntrusted); see
// docs/architecture.md §8.1.
//
// # Raw mode and proxies
//
// Connections of the roles in Config.RawStart start raw: before carrying
// messages they exchange bytes of the application's own ([Conn.SendRaw]
// out, Config.RawData in, with a count of the bytes consumed), for a proxy
// handshake or a custom preamble, then [Conn.Activate] or
// [Conn.EnterPassive] ends the raw phase. Unconsumed raw bytes are bounded
// by Config.MaxRawBuffered (ErrRawOverflow beyond). Config.Proxy (or
// PoolOptions.Proxy for one pool) sends a pool's connections through a
// [SOCKS5] proxy; its handshake is part of each connection attempt, on the
// dialing goroutine, so TLS runs end to end through it and a failure
// (ErrProxy, ErrProxyAuth, ErrProxyRefused, ErrProxyProtocol) is a failed
// attempt like any other. See docs/architecture.md §11.
//
// # Completion
//
// Every accepted send completes exactly once: a one-way message when its
// last byte has been handed to the socket, a request when its response
// arrives, either of them with an error wrapping ErrConnection, ErrCanceled,
// ErrCanceledByPeer or ErrEncode otherwise (a *MessageError tells whether
// sending had started). A send that returns an error is never completed.
// Handlers and completion callbacks run on an event loop and must not block;
// a few failure completions run elsewhere (a one-shot message failing because
// its pool cannot connect completes on the dialing goroutine, messages still
// queued when Stop gives up complete on Stop's goroutine, those still queued
// when AbortPool runs on its caller's, and a queued message canceled by
// Service.Cancel or by the end of its context on the canceling goroutine),
// so callbacks must also be safe to run on any goroutine.
//
// [Call] and [CallTo] are the blocking forms: they send a request through
// the same path and wait, on the caller's goroutine, for its completion,
// canceling the request when their context ends first.
//
// # Message kinds and resend rules
//
// Flags chosen per send:
//
//   - default: after a connection failure, a message whose sending had not
//     started is sent again on the pool's next connection; one that had
//     started fails with ErrConnection.
//   - Idempotent: resent after a connection failure until fully sent or,
//     for a request, until its response arrives.
//   - OneShot: never resent; fails at the first connection failure, and at
//     once when the pool cannot connect.
//   - Synchronous: the pool's synchronous messages all go to one of its
//     connections (the oldest active one when the first is sent; it keeps
//     the role until it closes), which writes them one at a time, in send
//     order. Activating an older connection or opening more does not move
//     them; when that connection closes, those it held are resent first,
//     in order, following the rules above.
//
// A message whose Cancel was asked (or whose context ended) is never sent
// again: it completes with ErrCanceled, unless it completed otherwise
// first.
//
// Responses (Context.Respond) are sent on the connection the request came
// from and are one-shot.
//
// Relay (docs/relay.md): a service with Config.Relay.Enabled forwards a
// message sent to "its-address/name" to the connection registered as name
// (Conn.RegisterRelayName), copying the body chunk by chunk without
// decoding it; answers route back through it. Relayed messages follow the
// rules above on each hop; a relay-bound message also waits for relay
// credits (Config.RelayCredits) before each packet, and its window, which
// a relay returns only as the message's destination takes the bytes: a
// destination that does not read stops only the messages going to it.
package ipc
