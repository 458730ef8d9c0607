package h2

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// FuzzH2Frames feeds what a client can send, after the preface, to a
// server connection: no panic, and the connection ends when the client
// does.
func FuzzH2Frames(f *testing.F) {
	var buf bytes.Buffer
	fr := http2.NewFramer(&buf, nil)
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, kv := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "x"}, {":path", "/"}, {"cookie", "a=1"}} {
		enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
	}
	fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 10})
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true})
	fr.WriteWindowUpdate(1, 100)
	fr.WriteWindowUpdate(0, 100)
	fr.WritePing(false, [8]byte{1})
	f.Add(append([]byte(nil), buf.Bytes()...))
	buf.Reset()
	fr.WriteSettings()
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: hb.Bytes()[:3], EndHeaders: false})
	fr.WriteContinuation(3, true, hb.Bytes()[3:])
	fr.WriteData(3, false, []byte("body"))
	fr.WriteRSTStream(3, http2.ErrCodeCancel)
	fr.WritePriority(5, http2.PriorityParam{StreamDep: 5})
	fr.WriteGoAway(0, http2.ErrCodeNo, nil)
	f.Add(append([]byte(nil), buf.Bytes()...))
	buf.Reset()
	fr.WriteSettings()
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true})
	fr.WriteData(1, true, []byte("posted"))
	fr.WriteSettingsAck()
	f.Add(append([]byte(nil), buf.Bytes()...))

	srv := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Write(bytes.Repeat([]byte("z"), 40000))
	}), WriteTimeout: time.Second}
	f.Fuzz(func(t *testing.T, data []byte) {
		client, server := net.Pipe()
		done := make(chan struct{})
		go func() {
			srv.ServeConn(context.Background(), server, nil, "192.0.2.1:1")
			close(done)
		}()
		go io.Copy(io.Discard, client)
		client.Write([]byte(http2.ClientPreface))
		client.Write(data)
		client.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the connection did not end with the client")
		}
	})
}
