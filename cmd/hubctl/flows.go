package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
)

// cmdReport is `hubctl report ID CODE [--description T] [--recipient C]`: it
// reports an edXML status about a document through the JSON route (01–06,
// 15, 16 as a recipient; 13 as the sender, asking a recipient to give it back).
func (c *client) cmdReport(ctx context.Context, args []string) error {
	if len(args) < 2 {
		return errors.New("cách dùng / usage: hubctl report ID CODE [--description TEXT] [--recipient CODE]")
	}
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	desc := fs.String("description", "", "mô tả, lý do / description, reason")
	recipient := fs.String("recipient", "", "đơn vị được yêu cầu (mã 13) / the recipient asked (code 13)")
	if err := fs.Parse(args[2:]); err != nil {
		return err
	}
	body, err := json.Marshal(map[string]string{"code": args[1], "description": *desc, "recipient": *recipient})
	if err != nil {
		return err
	}
	b, status, err := c.do(ctx, http.MethodPost, "/v1/documents/"+args[0]+"/status", body)
	if err != nil {
		return err
	}
	if c.raw {
		_, err := c.out.Write(b)
		return err
	}
	var r struct {
		ID        string `json:"id"`
		Duplicate bool   `json:"duplicate"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	if status == http.StatusOK && r.Duplicate {
		fmt.Fprintf(c.out, "Trạng thái %s đã được ghi nhận trước đó / status %s was already recorded: %s\n", args[1], args[1], r.ID)
		return nil
	}
	fmt.Fprintf(c.out, "Đã gửi trạng thái %s / status %s sent: %s\n", args[1], args[1], r.ID)
	return nil
}
