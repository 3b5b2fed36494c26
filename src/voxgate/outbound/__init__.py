"""Requests voxgate makes on behalf of a tenant (HTTP tools, bring-your-own LLMs, and later pre-connect
requests and webhooks), and the rules that keep them away from the server's own network."""
