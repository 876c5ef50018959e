package xmlscan

// Name characters of XML 1.0 (fifth edition), §2.3.

var asciiName = func() (t [128]uint8) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = 3
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = 3
	}
	t['_'], t[':'] = 3, 3
	for c := '0'; c <= '9'; c++ {
		t[c] = 1
	}
	t['-'], t['.'] = 1, 1
	return t
}()

func isNameStart(r rune) bool {
	if r < 0x80 {
		return asciiName[r]&2 != 0
	}
	switch {
	case r >= 0xC0 && r <= 0xD6, r >= 0xD8 && r <= 0xF6, r >= 0xF8 && r <= 0x2FF,
		r >= 0x370 && r <= 0x37D, r >= 0x37F && r <= 0x1FFF, r >= 0x200C && r <= 0x200D,
		r >= 0x2070 && r <= 0x218F, r >= 0x2C00 && r <= 0x2FEF, r >= 0x3001 && r <= 0xD7FF,
		r >= 0xF900 && r <= 0xFDCF, r >= 0xFDF0 && r <= 0xFFFD, r >= 0x10000 && r <= 0xEFFFF:
		return true
	}
	return false
}

func isNameChar(r rune) bool {
	if r < 0x80 {
		return asciiName[r] != 0
	}
	return isNameStart(r) || r == 0xB7 || (r >= 0x300 && r <= 0x36F) || (r >= 0x203F && r <= 0x2040)
}
