"""The Kubernetes agent (asyncio shell over kubernetes_asyncio; decisions in weavenet.core.kube)."""
