package ipc

import "github.com/ipcframe/ipcframe/internal/clock"

// clockTimer is a pending call on Config.Clock (the pool's reconnect
// backoff). Every timer of the service runs on that clock: the backoff
// through it directly, keepalive and inactivity as loop timers of the
// reactor, which is given the same clock.
type clockTimer = clock.Timer
