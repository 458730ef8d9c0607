package serve

import (
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
)

// serveMultipart sends several ranges as multipart/byteranges
// (RFC 9110 section 14.6) with an exact Content-Length.
func (h *Handler) serveMultipart(w http.ResponseWriter, rep *representation, ranges []byteRange, body io.ReadSeeker) {
	var b [12]byte
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	boundary := hex.EncodeToString(b[:])
	heads := make([]string, len(ranges))
	total := int64(0)
	for i, rg := range ranges {
		heads[i] = "\r\n--" + boundary + "\r\nContent-Type: " + rep.ContentType +
			"\r\nContent-Range: " + rg.contentRange(rep.Size) + "\r\n\r\n"
		total += int64(len(heads[i])) + rg.length
	}
	tail := "\r\n--" + boundary + "--\r\n"
	total += int64(len(tail))

	hd := w.Header()
	hd["Content-Type"] = []string{"multipart/byteranges; boundary=" + boundary}
	hd["Content-Length"] = []string{strconv.FormatInt(total, 10)}
	w.WriteHeader(http.StatusPartialContent)
	for i, rg := range ranges {
		if _, err := io.WriteString(w, heads[i]); err != nil {
			return
		}
		if rep.Data != nil {
			if _, err := w.Write(rep.Data[rg.start:rg.end()]); err != nil {
				return
			}
			continue
		}
		if _, err := body.Seek(rg.start, io.SeekStart); err != nil {
			return
		}
		if _, err := io.CopyN(w, body, rg.length); err != nil {
			return
		}
	}
	io.WriteString(w, tail)
}
