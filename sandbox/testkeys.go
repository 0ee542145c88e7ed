package sandbox

import "fmt"

// Keys are the credentials that a sandbox and a disputesync started
// separately share with no set-up (docs/contract.md section 1). They are published
// test values, printed by "disputesync sandbox --print-test-keys".
type Keys struct {
	AlipayClientID           string
	AlipayMerchantPrivatePEM string // the merchant signs requests with it
	AlipayMerchantPublicPEM  string // the sandbox verifies requests with it
	AlipayProviderPrivatePEM string // the sandbox signs responses and notifications
	AlipayProviderPublicPEM  string // disputesync verifies responses with it

	AlipayPlusClientID           string
	AlipayPlusMerchantPrivatePEM string
	AlipayPlusMerchantPublicPEM  string
	AlipayPlusProviderPrivatePEM string
	AlipayPlusProviderPublicPEM  string

	IngenicoMerchantID   string
	IngenicoAPIKeyID     string
	IngenicoSecretAPIKey string

	DisputeAPIToken         string // Authorization: Bearer <token>
	DisputeAPIWebhookSecret string // HMAC secret of the PSP's notifications
}

// TestKeys are the sandbox's fixed test credentials.
var TestKeys = Keys{
	AlipayClientID:           "SANDBOX_ALIPAY_CLIENT",
	AlipayMerchantPrivatePEM: alipayMerchantPrivatePEM,
	AlipayMerchantPublicPEM:  alipayMerchantPublicPEM,
	AlipayProviderPrivatePEM: alipayProviderPrivatePEM,
	AlipayProviderPublicPEM:  alipayProviderPublicPEM,

	AlipayPlusClientID:           "SANDBOX_ALIPAYPLUS_CLIENT",
	AlipayPlusMerchantPrivatePEM: alipayplusMerchantPrivatePEM,
	AlipayPlusMerchantPublicPEM:  alipayplusMerchantPublicPEM,
	AlipayPlusProviderPrivatePEM: alipayplusProviderPrivatePEM,
	AlipayPlusProviderPublicPEM:  alipayplusProviderPublicPEM,

	IngenicoMerchantID:   "9991",
	IngenicoAPIKeyID:     "sandbox0api0key1",
	IngenicoSecretAPIKey: "c2FuZGJveC1pbmdlbmljby1zZWNyZXQta2V5LTAwMQ==",

	DisputeAPIToken:         "sandbox-disputeapi-token",
	DisputeAPIWebhookSecret: "sandbox-disputeapi-webhook-secret",
}

// Print writes the test keys in a form an operator can paste into files.
func (k Keys) Print(w interface{ Write([]byte) (int, error) }) {
	fmt.Fprintf(w, "# disputesync sandbox test keys: public, for the sandbox only\n\n")
	fmt.Fprintf(w, "alipay client id: %s\n", k.AlipayClientID)
	fmt.Fprintf(w, "alipay merchant private key (--alipay-private-key-file):\n%s\n", k.AlipayMerchantPrivatePEM)
	fmt.Fprintf(w, "alipay provider public key (--alipay-public-key-file):\n%s\n", k.AlipayProviderPublicPEM)
	fmt.Fprintf(w, "alipayplus client id: %s\n", k.AlipayPlusClientID)
	fmt.Fprintf(w, "alipayplus merchant private key (--alipayplus-private-key-file):\n%s\n", k.AlipayPlusMerchantPrivatePEM)
	fmt.Fprintf(w, "alipayplus provider public key (--alipayplus-public-key-file):\n%s\n", k.AlipayPlusProviderPublicPEM)
	fmt.Fprintf(w, "ingenico merchant id: %s\ningenico api key id: %s\ningenico secret api key: %s\n\n",
		k.IngenicoMerchantID, k.IngenicoAPIKeyID, k.IngenicoSecretAPIKey)
	fmt.Fprintf(w, "disputeapi token: %s\ndisputeapi webhook secret: %s\n", k.DisputeAPIToken, k.DisputeAPIWebhookSecret)
}
