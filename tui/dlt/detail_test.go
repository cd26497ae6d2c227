package dlt_test

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	pdlt "github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/replay/replaytest"
	"github.com/come2us/opsctl/pkg/secret"
	"github.com/come2us/opsctl/tui/app"
	"github.com/come2us/opsctl/tui/dlt"
	"github.com/come2us/opsctl/tui/tuitest"
	"github.com/come2us/opsctl/tui/view"
)

const notificationsDLT = "notifications.DLT"

// traceRecord is a Spring DeserializationException dead letter built to break a naive viewer:
// tabs and CRLF line ends in the value, the message and a 200-line stack trace, and wide CJK and
// emoji characters in the key, the value and the message.
func traceRecord() *kgo.Record {
	var trace strings.Builder
	trace.WriteString("org.springframework.kafka.support.serializer.DeserializationException: failed to deserialize; 알림 🔔\r\n")
	for i := 1; i < 200; i++ {
		fmt.Fprintf(&trace, "\tat com.come2us.notification.Consumer.step%03d(Consumer.java:%d)\r\n", i, i)
	}
	return &kgo.Record{
		Topic: notificationsDLT, Key: []byte("주문-42 🔥"), Timestamp: replaytest.Base,
		Value: []byte("name\tvalue\r\n주문\t실패 🔥🔥\r\nstatus\tDECLINED\r\n"),
		Headers: []kgo.RecordHeader{
			{Key: pdlt.HeaderOriginalTopic, Value: []byte("notifications")},
			{Key: pdlt.HeaderOriginalPartition, Value: binary.BigEndian.AppendUint32(nil, 0)},
			{Key: pdlt.HeaderOriginalOffset, Value: binary.BigEndian.AppendUint64(nil, 41)},
			{Key: pdlt.HeaderOriginalGroup, Value: []byte("notification-service")},
			{Key: pdlt.HeaderExceptionFQCN, Value: []byte("org.springframework.kafka.support.serializer.DeserializationException")},
			{Key: pdlt.HeaderExceptionMessage, Value: []byte("failed to deserialize:\tunexpected 주문 🔥\r\nat offset 3")},
			{Key: pdlt.HeaderExceptionStacktrace, Value: []byte(trace.String())},
		},
	}
}

// recordRoot is the TUI opened straight on the trace record's view.
func recordRoot(t *testing.T, after func(time.Duration, tea.Msg) tea.Cmd) app.Model {
	t.Helper()
	c := replaytest.NewCluster(t, kfake.SeedTopics(1, notificationsDLT))
	replaytest.Produce(t, c, traceRecord())
	e := newEngine(t, c)
	o := dlt.Options{Ctx: t.Context(), Backend: e, Secrets: secret.NewFields(), Now: func() time.Time { return now }, Refresh: -1}
	return app.New(app.Options{
		Header: app.Header{Context: "prod", Kafka: "b-1.msk:9098", ArgoCD: "argocd.example:443", Kube: "prod-eks"},
		Routes: []app.Route{{Name: "record", Open: func([]string) (view.View, error) {
			return dlt.NewDetail(o, notificationsDLT, 0, 0), nil
		}}},
		Start: "record",
		After: after,
	})
}

// TestDLTRecordTrace is the record view of a record with tabs, CRLF, wide characters and a
// 200-line stack trace at 80x24: every line fits, nothing raw reaches the terminal.
func TestDLTRecordTrace(t *testing.T) {
	t.Parallel()
	p := tuitest.Start(t, recordRoot(t, nil), 80, 24)
	p.WaitFor("HEADERS (7)", "g/G top/end")
	raw := p.Quit().View()
	tuitest.CheckDrawn(t, raw, 80, 24)
	tuitest.Golden(t, "record_trace_80x24", tuitest.Plain(raw))

	// G shows the end of the trace, wrapped with w.
	p = tuitest.Start(t, recordRoot(t, nil), 80, 24)
	p.WaitFor("HEADERS (7)")
	p.Type("wG")
	p.WaitFor("Consumer.step199(Consumer.java:199)", "100%")
	raw = p.Quit().View()
	tuitest.CheckDrawn(t, raw, 80, 24)
	tuitest.Golden(t, "record_trace_end_80x24", tuitest.Plain(raw))
}

// TestDLTRecordKeys presses every key the record view knows (and some it does not): after each
// one the screen is exactly 80x24 with nothing raw in it, row 1 is the header and row 2 the
// breadcrumb, so the terminal can never scroll them away. The trace and the longest line can be
// read in full.
func TestDLTRecordKeys(t *testing.T) {
	t.Parallel()
	d := tuitest.Drive(t, recordRoot(t, func(time.Duration, tea.Msg) tea.Cmd { return nil }), 80, 24)
	check := func(after string) string {
		t.Helper()
		raw := d.Model.View()
		tuitest.CheckDrawn(t, raw, 80, 24)
		lines := strings.Split(tuitest.Plain(raw), "\n")
		if !strings.HasPrefix(lines[0], "ctx:prod") || !strings.HasPrefix(lines[1], "record 0/0") {
			t.Fatalf("after %s rows 1-2 are %q, %q", after, lines[0], lines[1])
		}
		return tuitest.Plain(raw)
	}
	if s := check("opening"); !strings.Contains(s, "STACK TRACE") && !strings.Contains(s, "VALUE (") {
		t.Fatalf("record not drawn:\n%s", s)
	}
	keys := []struct {
		name string
		msg  tea.Msg
	}{
		{"j", runes("j")}, {"k", runes("k")}, {"down", tea.KeyMsg{Type: tea.KeyDown}}, {"pgdown", tea.KeyMsg{Type: tea.KeyPgDown}},
		{"pgup", tea.KeyMsg{Type: tea.KeyPgUp}}, {"space", tea.KeyMsg{Type: tea.KeySpace, Runes: []rune(" ")}}, {"f", runes("f")},
		{"b", runes("b")}, {"d", runes("d")}, {"u", runes("u")}, {"G", runes("G")}, {"g", runes("g")}, {"end", tea.KeyMsg{Type: tea.KeyEnd}},
		{"home", tea.KeyMsg{Type: tea.KeyHome}}, {"v", runes("v")}, {"v", runes("v")}, {"w", runes("w")}, {"G", runes("G")},
		{"ctrl+l", tea.KeyMsg{Type: tea.KeyCtrlL}}, {"left", tea.KeyMsg{Type: tea.KeyLeft}}, {"right", tea.KeyMsg{Type: tea.KeyRight}},
		{"tab", tea.KeyMsg{Type: tea.KeyTab}}, {"wheel down", tea.MouseMsg{Button: tea.MouseButtonWheelDown, Action: tea.MouseActionPress}},
		{"wheel up", tea.MouseMsg{Button: tea.MouseButtonWheelUp, Action: tea.MouseActionPress}}, {"w", runes("w")},
		{"resize", tea.WindowSizeMsg{Width: 80, Height: 24}}, {"?", runes("?")}, {"?", runes("?")},
	}
	for _, k := range keys {
		d.Send(k.msg)
		check(k.name)
	}
	// The end of the trace is reachable, cut or wrapped.
	d.Send(runes("G"))
	if s := check("G"); !strings.Contains(s, "Consumer.step199(Consumer.java:199)") {
		t.Errorf("G does not reach the trace's last line:\n%s", s)
	}
	// The message's second line and the trace's first line are longer than 80 cells: wrapped,
	// they read in full.
	d.Send(runes("w"))
	d.Send(runes("g"))
	var seen strings.Builder
	for range 40 {
		seen.WriteString(check("pgdown"))
		d.Send(tea.KeyMsg{Type: tea.KeyPgDown})
	}
	all := strings.Join(strings.Fields(seen.String()), "")
	for _, want := range []string{"DeserializationException:failedtodeserialize;알림🔔", "Consumer.step150(Consumer.java:150)"} {
		if !strings.Contains(all, want) {
			t.Errorf("wrapped, the record never shows %q", want)
		}
	}
}

// TestDLTRevealNoteStaysWithRecord: "secrets revealed" belongs to the record view; back on the
// records list the status line no longer claims it.
func TestDLTRevealNoteStaysWithRecord(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	p := tuitest.Start(t, w.root(t.Context(), false), 80, 24)
	openRecords(t, p)
	p.Key(tea.KeyEnter)
	p.WaitFor("VALUE (json")
	p.Type("v")
	p.WaitFor("secrets revealed in this record view")
	p.Key(tea.KeyEsc)
	screen := tuitest.Plain(p.Quit().View())
	if strings.Contains(screen, "secrets revealed") || strings.Contains(screen, "VALUE (") {
		t.Errorf("back on the list the reveal note stayed:\n%s", screen)
	}
}

// TestDLTWhereErrorOneLine: a --where expression that does not compile is reported on one line,
// its caret lines folded, with no literal \n.
func TestDLTWhereErrorOneLine(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	p := tuitest.Start(t, w.root(t.Context(), false), 120, 24)
	openRecords(t, p)
	p.Type("/=orderId ==")
	p.Key(tea.KeyEnter)
	p.WaitFor("unexpected token EOF")
	raw := p.Quit().View()
	tuitest.CheckDrawn(t, raw, 120, 24)
	lines := strings.Split(tuitest.Plain(raw), "\n")
	status := lines[len(lines)-1]
	if !strings.Contains(status, "unexpected token EOF (1:10) | orderId ==") || strings.Contains(status, `\n`) {
		t.Errorf("status line %q:\n%s", status, tuitest.Plain(raw))
	}
}

func runes(s string) tea.KeyMsg { return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)} }
