package h2

// streamTable is a connection's open streams by id: two slices searched
// from the newest, not a map. A client has few streams open at once
// (at most MaxConcurrentStreams, and a request the reader answers itself
// closes before the next is read), and a map whose last entry is deleted
// draws a new hash seed (runtime.rand), which here was once a request.
type streamTable struct {
	ids []uint32
	sts []*stream
}

// get returns stream id, nil if it is not open.
func (t *streamTable) get(id uint32) *stream {
	for i := len(t.ids) - 1; i >= 0; i-- {
		if t.ids[i] == id {
			return t.sts[i]
		}
	}
	return nil
}

func (t *streamTable) add(st *stream) {
	t.ids = append(t.ids, st.id)
	t.sts = append(t.sts, st)
}

// remove takes stream id out, keeping the order of the others.
func (t *streamTable) remove(id uint32) {
	for i := len(t.ids) - 1; i >= 0; i-- {
		if t.ids[i] == id {
			t.ids = append(t.ids[:i], t.ids[i+1:]...)
			copy(t.sts[i:], t.sts[i+1:])
			t.sts[len(t.sts)-1] = nil
			t.sts = t.sts[:len(t.sts)-1]
			return
		}
	}
}

func (t *streamTable) len() int { return len(t.ids) }

// all returns the open streams; a caller that closes some while it goes
// through them takes a copy.
func (t *streamTable) all() []*stream { return t.sts }
