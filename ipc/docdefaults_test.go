package ipc

import (
	"bufio"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ipcframe/ipcframe/reactor"
	"github.com/ipcframe/ipcframe/serde"
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
		{"`MessageWindow`", DefaultMessageWindow},
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
		{"`TLSHandshakeTimeout`", int64(DefaultTLSHandshakeTimeout)},
		{"`MaxTLSHandshakes`", DefaultMaxTLSHandshakes},
		{"`RelayCredits`", DefaultRelayCredits},
		{"`Relay.SourceBytes`", DefaultRelaySourceBytes},
		{"`Relay.MaxBuffers`", DefaultRelayMaxBuffers},
		{"`Relay.WaitTimeout`", int64(DefaultRelayWaitTimeout)},
		{"`Relay.MaxURL`", DefaultRelayMaxURL},
		{"`Relay.StallTimeout`", int64(DefaultRelayStallTimeout)},
		{"`MaxString`", serde.DefaultMaxString},
		{"`MaxContainer`", serde.DefaultMaxContainer},
		{"Largest packet", maxPacketPayload},
		{"Pump quantum", DefaultPumpQuantum},
		{"Reactor HighWater", writeHighWater}, // what ipc sets, not the reactor default
		{"Reactor LowWater", writeLowWater},
		{"`TCP_NOTSENT_LOWAT`", writeNotSentLowat},
		{"Initial message window (W0)", windowInitial},
		{"Asynchronous sinks: read pause", asyncPauseBytes},
		{"Reactor StallPoll", int64(reactor.DefaultStallPoll)},
		{"Reactor ReadBufferCap", reactor.DefaultReadBufferCap},
	} {
		cell, ok := cells[tc.row]
		require.True(t, ok, "docs/tuning.md has no row %s", tc.row)
		got, ok := docQuantity(cell)
		require.True(t, ok, "row %s: no quantity at the start of %q", tc.row, cell)
		require.Equal(t, tc.want, got, "row %s: documented %q", tc.row, cell)
	}
	// Rows that name several values: each "label N unit" in the cell.
	for _, tc := range []struct {
		row, label string
		want       int64
	}{
		{"Pipe for small messages", "HighWater", pipeSmallHighWater},
		{"Pipe for small messages", "LowWater", pipeSmallLowWater},
		{"Short pipe", "HighWater", pipeShortHighWater},
		{"Short pipe", "LowWater", pipeShortLowWater},
		{"Short pipe", "`TCP_NOTSENT_LOWAT`", pipeShortNotSent},
		{"Short pipe", "each large message's window", besideWindow},
		{"Short pipe", "at most", besideShareMax * besideWindow},
		{"Short pipe", "plus up to", besideExtraMax},
		{"Short pipe", "to a peer with windows,", largePacketSize},
		{"Short pipe", "write batches of", pipeLongBatch},
		{"Short pipe", "pump quantum of", pipeLongQuantum},
		{"Long pipe", "`TCP_NOTSENT_LOWAT`", pipeLongNotSent},
		{"Long pipe", "write batches of", pipeLongBatch},
		{"Long pipe", "pump quantum", pipeLongQuantum},
		{"Loopback receive buffer", "", loopbackRecvBuffer},
		{"Loopback receive buffer", ";", recvLongBuffer},
	} {
		cell, ok := cells[tc.row]
		require.True(t, ok, "docs/tuning.md has no row %s", tc.row)
		i := strings.Index(cell, tc.label)
		require.True(t, i >= 0, "row %s: no %q in %q", tc.row, tc.label, cell)
		got, ok := docQuantity(strings.TrimSpace(cell[i+len(tc.label):]))
		require.True(t, ok, "row %s: no quantity after %q in %q", tc.row, tc.label, cell)
		require.Equal(t, tc.want, got, "row %s, %s: documented %q", tc.row, tc.label, cell)
	}
}

// TestTuningDocNamesEveryField: every exported field of Config and of
// RelayConfig (as Relay.Name) has a row in one of docs/tuning.md's tables,
// so a new field cannot go undocumented.
func TestTuningDocNamesEveryField(t *testing.T) {
	cells := tuningDocCells(t, "../docs/tuning.md")
	named := map[string]bool{}
	for row := range cells {
		for _, m := range regexp.MustCompile("`([A-Za-z.]+)`").FindAllStringSubmatch(row, -1) {
			named[m[1]] = true
		}
	}
	for _, tc := range []struct {
		prefix string
		typ    reflect.Type
	}{{"", reflect.TypeFor[Config]()}, {"Relay.", reflect.TypeFor[RelayConfig]()}} {
		for f := range tc.typ.Fields() {
			if f.Name == "Relay" { // a struct: RelayConfig's fields have rows
				continue
			}
			if f.IsExported() && !named[tc.prefix+f.Name] {
				t.Errorf("docs/tuning.md has no row for %s%s", tc.prefix, f.Name)
			}
		}
	}
}

// TestConfigCommentDefaults: the default each Config and RelayConfig field's
// comment states ("Default 10 s", "Zero means 4 MiB") is the one the code
// fills in (the go doc of Config is the other reference users read).
func TestConfigCommentDefaults(t *testing.T) {
	want := map[string]int64{
		"ResolveInterval":       int64(DefaultResolveInterval),
		"MinResolveInterval":    int64(DefaultMinResolveInterval),
		"BufferSize":            DefaultBufferSize,
		"MaxActiveConnections":  DefaultMaxActiveConnections,
		"MaxPendingConnections": DefaultMaxPendingConnections,
		"MaxQueuedMessages":     DefaultMaxQueuedMessages,
		"MaxMultiplex":          DefaultMaxMultiplex,
		"MaxResponseWait":       DefaultMaxResponseWait,
		"MaxReaderSlots":        DefaultMaxReaderSlots,
		"MessageWindow":         DefaultMessageWindow,
		"ContinuousPackets":     DefaultContinuousPackets,
		"TypeIDSize":            DefaultTypeIDSize,
		"TLSHandshakeTimeout":   int64(DefaultTLSHandshakeTimeout),
		"MaxTLSHandshakes":      DefaultMaxTLSHandshakes,
		"WriteBatch":            DefaultWriteBatch,
		"BusyPoll":              int64(reactor.DefaultBusyPoll),
		"KeepAlive":             int64(DefaultKeepAlive),
		"InactivityTimeout":     int64(DefaultInactivityTimeout),
		"MaxKeepAlives":         DefaultMaxKeepAlives,
		"FirstPacketTimeout":    int64(DefaultFirstPacketTimeout),
		"DeadPeerTimeout":       3, // "Default 3×KeepAlive"
		"DialTimeout":           int64(DefaultDialTimeout),
		"ReconnectMin":          int64(DefaultReconnectMin), // "Defaults 50 ms and 10 s"
		"MaxRawBuffered":        DefaultMaxRawBuffered,
		"RelayCredits":          DefaultRelayCredits,
		"Relay.SourceBytes":     DefaultRelaySourceBytes,
		"Relay.MaxBuffers":      DefaultRelayMaxBuffers,
		"Relay.WaitTimeout":     int64(DefaultRelayWaitTimeout),
		"Relay.MaxURL":          DefaultRelayMaxURL,
		"Relay.StallTimeout":    int64(DefaultRelayStallTimeout),
	}
	require.Equal(t, 3*DefaultKeepAlive, mustDefaults(t, Config{Protocol: NewProtocol()}).DeadPeerTimeout)
	fset := token.NewFileSet()
	stated := map[string]string{}
	defRE := regexp.MustCompile(`(?:Defaults?(?: \(zero\))?|Zero means) (\d+ ?(?:ms|s|µs|KiB|MiB)?\b)`)
	for _, file := range []string{"config.go", "relay.go"} {
		f, err := parser.ParseFile(fset, file, nil, parser.ParseComments)
		require.NoError(t, err)
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok || (ts.Name.Name != "Config" && ts.Name.Name != "RelayConfig") {
				return true
			}
			prefix := map[string]string{"Config": "", "RelayConfig": "Relay."}[ts.Name.Name]
			for _, fld := range ts.Type.(*ast.StructType).Fields.List {
				if fld.Doc == nil || len(fld.Names) == 0 {
					continue
				}
				text := strings.Join(strings.Fields(fld.Doc.Text()), " ")
				if m := defRE.FindStringSubmatch(text); m != nil {
					stated[prefix+fld.Names[0].Name] = m[1]
				}
			}
			return false
		})
	}
	for field, w := range want {
		s, ok := stated[field]
		if !ok {
			t.Errorf("the comment of %s states no default", field)
			continue
		}
		got, ok := docQuantity(strings.Replace(s, "KiB", " KiB", 1))
		if !ok || got != w {
			t.Errorf("the comment of %s states default %q, the code uses %d", field, s, w)
		}
	}
	for field, s := range stated {
		if _, ok := want[field]; !ok {
			t.Errorf("the comment of %s states default %q: add it to this test", field, s)
		}
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

var docQuantityRE = regexp.MustCompile(`^(\d+)(?:\^(\d+))?\s*(ms|s|µs|KiB|MiB)?\b`)

// docQuantity reads the number and unit that start a documented value:
// a count (2^20 for a power), bytes (KiB, MiB) or a duration (µs, ms, s,
// as nanoseconds).
func docQuantity(s string) (int64, bool) {
	m := docQuantityRE.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, false
	}
	if m[2] != "" {
		e, err := strconv.Atoi(m[2])
		if err != nil || n != 2 || e > 62 {
			return 0, false
		}
		n = 1 << e
	}
	mult := map[string]int64{
		"": 1, "KiB": 1 << 10, "MiB": 1 << 20,
		"µs": int64(time.Microsecond), "ms": int64(time.Millisecond), "s": int64(time.Second),
	}[m[3]]
	return n * mult, true
}

func mustDefaults(t *testing.T, c Config) Config {
	t.Helper()
	c, err := c.withDefaults()
	require.NoError(t, err)
	return c
}
