"""Pure decisions of the Kubernetes agent (weavenet.k8s is its asyncio shell)."""
