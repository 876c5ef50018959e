package restapi

import "io"

// maxBodyPrealloc bounds the buffer readBody sizes from a declared
// Content-Length before any byte has arrived.
const maxBodyPrealloc = 256 << 10

// readBody reads body up to limit bytes (as io.ReadAll of an
// io.LimitReader would), into a buffer sized from the declared length
// (-1 when unknown) so that a body of the declared size is read without
// growing the buffer (and with one allocation).
func readBody(body io.Reader, declared, limit int64) ([]byte, error) {
	size := int64(512)
	if declared >= 0 {
		size = min(declared+1, limit, maxBodyPrealloc) // +1: room to see EOF without growing
	}
	buf := make([]byte, 0, max(size, 1))
	r := io.LimitReader(body, limit)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)] // grow
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
