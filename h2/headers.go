package h2

import (
	"strings"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// headerBlock is a HEADERS frame with its CONTINUATION frames (RFC 9113
// 4.3), decoded as it arrives by the connection's one HPACK decoder into
// fields, which the next block reuses: owned by the reader, valid until
// the next block starts.
type headerBlock struct {
	streamID  uint32
	endStream bool
	priority  http2.PriorityParam
	// fields: the pseudo-fields first (emitField refuses one after a
	// regular field).
	fields []hpack.HeaderField
	// remain is how many more bytes of fields (HPACK-decoded, 32 a field
	// extra: RFC 9113 6.5.2) the header list may have; truncated: it had
	// more, and fields stops before them.
	remain    uint32
	truncated bool
	invalid   bool // a field no request may carry (RFC 9113 8.2.1)
	open      bool // CONTINUATION frames are to come
}

// readHeaders decodes a HEADERS or CONTINUATION frame into c.hdr (the
// Framer checks that CONTINUATION frames follow their HEADERS frame
// without another frame between), and reports whether the block is
// complete. Every block is decoded, whatever becomes of its stream: the
// HPACK table is the connection's.
func (c *conn) readHeaders(f http2.Frame) (bool, error) {
	b := &c.hdr
	var frag []byte
	var ended bool
	switch f := f.(type) {
	case *http2.HeadersFrame:
		*b = headerBlock{streamID: f.StreamID, endStream: f.StreamEnded(), priority: f.Priority,
			fields: b.fields[:0], remain: c.s.maxHeaderBytes(), open: true}
		c.hdec.SetEmitEnabled(true)
		frag, ended = f.HeaderBlockFragment(), f.HeadersEnded()
	case *http2.ContinuationFrame:
		frag, ended = f.HeaderBlockFragment(), f.HeadersEnded()
		if b.invalid {
			// Nothing is counted past an invalid field: end it here.
			return false, http2.ConnectionError(http2.ErrCodeProtocol)
		}
	}
	// A fragment far larger than the header list may still take would be
	// decoded only to be dropped: as x/net's server, refuse it (its two
	// budgets, header and trailer fields, are one here).
	if limit := 2 * (int64(b.remain) + int64(c.s.maxHeaderBytes())); b.truncated && len(frag) > 0 || int64(len(frag)) > limit {
		return false, http2.ConnectionError(http2.ErrCodeProtocol)
	}
	if _, err := c.hdec.Write(frag); err != nil {
		return false, http2.ConnectionError(http2.ErrCodeCompression)
	}
	if !ended {
		return false, nil
	}
	b.open = false
	if err := c.hdec.Close(); err != nil {
		return false, http2.ConnectionError(http2.ErrCodeCompression)
	}
	return true, nil
}

// emitField takes a field the decoder read into c.hdr, within the
// header list's bound; one that no request may carry makes the block
// invalid (RFC 9113 8.2.1, 8.3), and the rest is only decoded.
func (c *conn) emitField(f hpack.HeaderField) {
	b := &c.hdr
	pseudo := strings.HasPrefix(f.Name, ":")
	if pseudo && len(b.fields) > 0 && !b.fields[len(b.fields)-1].IsPseudo() || !c.validField(f, pseudo) {
		b.invalid = true
		c.hdec.SetEmitEnabled(false)
		return
	}
	if size := f.Size(); size <= b.remain {
		b.remain -= size
		b.fields = append(b.fields, f)
		return
	}
	b.truncated, b.remain = true, 0
	c.hdec.SetEmitEnabled(false)
}

// validField reports whether f's value, and a regular field's name, may
// be in a request (RFC 9113 8.2.1). Fields of up to maxCachedField bytes
// found valid are remembered by the addresses of their strings
// (fieldSlotOf, as the response field cache; at most 64 x 512 bytes a
// connection, TestValidFieldsBound): a field the HPACK table gives by
// index comes in the same strings each time, and its bytes are looked
// at once.
func (c *conn) validField(f hpack.HeaderField, pseudo bool) bool {
	if c.validFields == nil {
		c.validFields = new([fieldSlots]hpack.HeaderField)
	}
	known := &c.validFields[fieldSlotOf(f.Name, f.Value)]
	if known.Value == f.Value && known.Name == f.Name && f.Name != "" {
		return true
	}
	if !httpguts.ValidHeaderFieldValue(f.Value) || !pseudo && !validWireName(f.Name) {
		return false
	}
	if len(f.Name)+len(f.Value) <= maxCachedField {
		*known = f
	}
	return true
}

// validWireName reports whether name is a field name as HTTP/2 sends it:
// a token in lower case (RFC 9113 8.2.1).
func validWireName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if b := name[i]; b >= 'A' && b <= 'Z' || !httpguts.IsTokenRune(rune(b)) {
			return false
		}
	}
	return true
}
