package sandbox

import "unicode/utf8"

// appendRecord writes r as the list serves it (the same bytes as
// encoding/json, field for field) without reflection: the list renders
// records on every page, so this is the sandbox's hot path.
func appendRecord(b []byte, r *Record, status string) []byte {
	d := &r.Disputes
	b = append(b, `{"terminal":`...)
	b = appendString(b, r.Terminal)
	b = append(b, `,"currency":`...)
	b = appendString(b, r.Currency)
	b = append(b, `,"amount":`...)
	b = appendString(b, r.Amount)
	b = append(b, `,"methods":`...)
	b = appendString(b, r.Methods)
	b = append(b, `,"payment_id":`...)
	b = appendString(b, r.PaymentID)
	b = append(b, `,"order_id":`...)
	b = appendString(b, r.OrderID)
	b = append(b, `,"merchant":{"merchant_id":`...)
	b = appendString(b, r.Merchant.MerchantID)
	b = append(b, `,"merchant_name":`...)
	b = appendString(b, r.Merchant.MerchantName)
	b = append(b, `},"status":`...)
	b = appendString(b, status)
	b = append(b, `,"disputes":{"disputes_id":`...)
	b = appendString(b, d.DisputesID)
	b = append(b, `,"disputes_type":`...)
	b = appendString(b, d.DisputesType)
	b = append(b, `,"disputes_reason":`...)
	b = appendString(b, d.DisputesReason)
	b = append(b, `,"disputes_reference":`...)
	b = appendString(b, d.DisputesReference)
	b = append(b, `,"disputes_amount":`...)
	b = appendString(b, d.DisputesAmount)
	b = append(b, `,"disputes_currency":`...)
	b = appendString(b, d.DisputesCurrency)
	b = append(b, `,"disputes_times":`...)
	b = appendString(b, d.DisputesTimes)
	b = append(b, `,"disputes_period_from":`...)
	b = appendString(b, d.DisputesPeriodFrom)
	b = append(b, `,"disputes_period_to":`...)
	b = appendString(b, d.DisputesPeriodTo)
	b = append(b, `,"disputes_date":`...)
	b = appendString(b, d.DisputesDate)
	b = append(b, `,"disputes_comment":`...)
	b = appendString(b, d.DisputesComment)
	b = append(b, `,"disputes_comments_history":`...)
	b = appendString(b, d.DisputesCommentsHistory)
	b = append(b, `,"disputes_reply_deadline":`...)
	b = appendString(b, d.DisputesReplyDeadline)
	b = append(b, `,"disputes_appeal_status":`...)
	b = appendString(b, d.DisputesAppealStatus)
	b = append(b, `,"disputes_status":`...)
	b = appendString(b, d.DisputesStatus)
	b = append(b, `},"result_code":`...)
	b = appendString(b, r.ResultCode)
	b = append(b, `,"result_message":`...)
	b = appendString(b, r.ResultMessage)
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// plain marks the ASCII bytes written as they are.
var plain = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendString writes s as a JSON string the way encoding/json does
// (including its HTML-safe escapes and U+2028/U+2029).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if plain[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
