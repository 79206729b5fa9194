package mailmeta

// Section resolves an IMAP section-part path such as []int{1, 2} to its
// Part (RFC 9051 §6.4.5). Part 1 of a non-multipart message is its body;
// after a message/rfc822 (or message/global) part, the following numbers
// address the parts of the enclosed message. An empty path returns the
// top-level Body.
func (m *Meta) Section(path []int) (*Part, bool) {
	if m == nil || m.Body == nil {
		return nil, false
	}
	if len(path) == 0 {
		return m.Body, true
	}
	cur := m.Body   // the entity whose parts the next number selects
	message := true // cur is a message (top level or enclosed)
	for i, n := range path {
		var pt *Part
		switch {
		case cur.Type == "multipart":
			if n < 1 || n > len(cur.Children) {
				return nil, false
			}
			pt = cur.Children[n-1]
		case message && n == 1:
			pt = cur
		default:
			return nil, false
		}
		if i == len(path)-1 {
			return pt, true
		}
		switch {
		case pt.Message != nil:
			cur, message = pt.Message, true
		case pt.Type == "multipart" && pt != cur:
			cur, message = pt, false
		default:
			return nil, false
		}
	}
	return nil, false
}
