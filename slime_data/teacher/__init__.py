"""The teacher LLM: rationales, detail-heavy QA and a judge pass over an OpenAI-compatible API.

Modules, from the bottom up:
- ``answers``: compare short answers after normalisation (public; used elsewhere too).
- ``config``: ``TeacherConfig`` from ``pipelines/teacher.yaml`` + overrides; key resolution.
- ``prompts``: versioned templates under ``pipelines/prompts/``.
- ``replies``: the reply models, their strict JSON schema, the lenient fallback parser.
- ``images``: downscaled data URLs, keyed by content hash.
- ``cache``: SQLite (WAL) cache of complete responses, keyed by request hash.
- ``limiter``: RPM / TPM token buckets.
- ``client``: cache -> budget -> limits -> concurrency -> retries; ``ask`` validates replies.
- ``modes``: what each mode does to one record.
- ``ordered``: async work over a stream, results in input order.
- ``testing``: a scripted OpenAI-compatible loopback server.
The recipe step is ``slime_data.steps.teacher.TeacherStep``; the command is ``slime-data teach``.
"""
