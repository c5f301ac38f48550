"""`slime-model serve`: an OpenAI-compatible chat endpoint for a SliME checkpoint, with dynamic batching.

Modules: `settings` (limits, validated), `errors` (OpenAI error bodies), `images` (image URLs ->
PIL images, with the SSRF and decompression-bomb guards), `parsing` (chat request -> one
`GenerationRequest`), `batching` (the queue that runs concurrent requests as one batch through
`slime_model.generation.generate_batch`), `responses` (completion, chunk and usage bodies), `app`
(the FastAPI routes), `cli` (the command) and `testing` (a server in a thread, for tests and benchmarks).
"""
