package docs_test

import (
	"fmt"

	"github.com/disputesync/disputesync/docs"
)

// A command is checked against its action's schema, the same rules the
// worker applies.
func ExampleValidate() {
	ok := []byte(`{"disputeRequestId":"ops-1","disputeId":"D100","params":{"comment":"Delivered on 2 April"}}`)
	blank := []byte(`{"disputeRequestId":"ops-2","disputeId":"D100","params":{"comment":"   "}}`)
	fmt.Println(docs.Validate(docs.CommandSchema("disputeapi", "submit_defense"), ok))
	fmt.Println(docs.Validate(docs.CommandSchema("disputeapi", "submit_defense"), blank) != nil)
	// Output:
	// <nil>
	// true
}

// An integration test checks every message it reads from JetStream by its
// subject, and reports the count at the end.
func ExampleValidateMessage() {
	header := map[string][]string{"Nats-Msg-Id": {"dlq:7"}, "Dlq-Reason": {"invalid"}, "Dlq-Error": {"INVALID_COMMAND: command is not JSON"},
		"Dlq-Original-Subject": {"disputes.actions.alipay.accept_dispute"}, "Dlq-Original-Sequence": {"7"}, "Dlq-Deliveries": {"1"}}
	err := docs.ValidateMessage("disputes", "disputes.dlq.alipay.accept_dispute", header, []byte("not json"))
	fmt.Println(err, docs.Validated()["headers.deadletter"] > 0)
	// Output:
	// <nil> true
}
