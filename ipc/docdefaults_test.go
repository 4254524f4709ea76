package ipc

import (
	"bufio"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ipcframe/ipcframe/reactor"
)

// TestTuningDocDefaults keeps docs/tuning.md's reference tables true: every
// default documented there for a Config field or a fixed engine value must
// be the constant the code uses.
func TestTuningDocDefaults(t *testing.T) {
	cells := tuningDocCells(t, "../docs/tuning.md")
	for _, tc := range []struct {
		row  string
		want int64
	}{
		{"`BufferSize`", DefaultBufferSize},
		{"`MaxActiveConnections`", DefaultMaxActiveConnections},
		{"`MaxPendingConnections`", DefaultMaxPendingConnections},
		{"`MaxQueuedMessages`", DefaultMaxQueuedMessages},
		{"`MaxMultiplex`", DefaultMaxMultiplex},
		{"`MaxResponseWait`", DefaultMaxResponseWait},
		{"`MaxReaderSlots`", DefaultMaxReaderSlots},
		{"`ContinuousPackets`", DefaultContinuousPackets},
		{"`TypeIDSize`", DefaultTypeIDSize},
		{"`WriteBatch`", DefaultWriteBatch},
		{"`DialTimeout`", int64(DefaultDialTimeout)},
		{"`ReconnectMin`", int64(DefaultReconnectMin)},
		{"`ReconnectMax`", int64(DefaultReconnectMax)},
		{"`ResolveInterval`", int64(DefaultResolveInterval)},
		{"`MinResolveInterval`", int64(DefaultMinResolveInterval)},
		{"`KeepAlive`", int64(DefaultKeepAlive)},
		{"`InactivityTimeout`", int64(DefaultInactivityTimeout)},
		{"`MaxKeepAlives`", DefaultMaxKeepAlives},
		{"`FirstPacketTimeout`", int64(DefaultFirstPacketTimeout)},
		{"`MaxRawBuffered`", DefaultMaxRawBuffered},
		{"`BusyPoll`", int64(reactor.DefaultBusyPoll)},
		{"Pump quantum", DefaultPumpQuantum},
		{"Reactor HighWater", writeHighWater}, // what ipc sets, not the reactor default
		{"Reactor LowWater", writeLowWater},
		{"Reactor StallPoll", int64(reactor.DefaultStallPoll)},
		{"Reactor ReadBufferCap", reactor.DefaultReadBufferCap},
	} {
		cell, ok := cells[tc.row]
		require.True(t, ok, "docs/tuning.md has no row %s", tc.row)
		got, ok := docQuantity(cell)
		require.True(t, ok, "row %s: no quantity at the start of %q", tc.row, cell)
		require.Equal(t, tc.want, got, "row %s: documented %q", tc.row, cell)
	}
}

// tuningDocCells returns, for each row of the tables of path whose header
// has a "Default" (field tables) or "Setting" (fixed values) column, that
// column's cell, keyed by the row's first cell.
func tuningDocCells(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	out := map[string]string{}
	col := -1 // the default column of the current table, -1 outside one
	header := true
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "|") {
			col, header = -1, true
			continue
		}
		if strings.HasPrefix(line, "|---") {
			continue
		}
		cols := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cols {
			cols[i] = strings.TrimSpace(cols[i])
		}
		if header {
			header = false
			for i, c := range cols {
				if i > 0 && (c == "Default" || c == "Setting") {
					col = i
				}
			}
			continue
		}
		if col >= 0 && col < len(cols) {
			out[cols[0]] = cols[col]
		}
	}
	require.NoError(t, sc.Err())
	return out
}

var docQuantityRE = regexp.MustCompile(`^(\d+)\s*(ms|s|µs|KiB|MiB)?\b`)

// docQuantity reads the number and unit that start a documented value:
// a count, bytes (KiB, MiB) or a duration (µs, ms, s, as nanoseconds).
func docQuantity(s string) (int64, bool) {
	m := docQuantityRE.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, false
	}
	mult := map[string]int64{
		"": 1, "KiB": 1 << 10, "MiB": 1 << 20,
		"µs": int64(time.Microsecond), "ms": int64(time.Millisecond), "s": int64(time.Second),
	}[m[2]]
	return n * mult, true
}
