"""Generative judges (LLM-as-a-judge): pairwise `[[A]]`/`[[B]]`, N-way A-D, or 1-10 ratings of one response.

The judge renders each request with its protocol's template (rmorch.actors.judge_prompts), sends the whole shard to its
generation backend in one call (vLLM engine started once per replica, or an OpenAI-compatible server), and parses
the verdict or rating; raw output and a parse flag go into every result row. Comparisons come in the presented
orders the plan chose (rmorch.core.permutations); items a suite always has rated (RewardBench 2 Ties) arrive as
pointwise requests and are rated whatever the protocol.

Prompts that do not fit the context window (max_model_len minus max_tokens) are shortened: the question and the
responses keep their head and tail around an omission marker, and the row is flagged `truncated`.

Images (`images: auto|on|off`). A vision-language judge is shown the image parts of an item's context: each file is
read and decoded here (a missing or unreadable image makes that request an error row, the rest of the shard runs),
and the images go to the backend beside the conversation (vLLM: `multi_modal_data` in the shard's one batched call;
OpenAI: `image_url` parts with base64 data URLs). `auto` shows images iff vLLM loads the model as multimodal (its
architecture has a vision tower); with `backend: openai` the server's model is unknown, so `auto` is off and `on`
must be said. A judge that is not shown images sees each image as an "[Image k: PATH]" line, as before.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from rmorch.actors import register_kind
from rmorch.actors.backends.generation import Generation, Generator, SamplingConfig
from rmorch.actors.backends.verdict_probs import RATING_LABELS, LabelProbs, describe, verdict_from_probs
from rmorch.actors.base import (
    ActorContext,
    Capabilities,
    CompareRequest,
    InferenceSettings,
    ModelKind,
    Presentation,
    Request,
    ScoreOutcome,
    ScoreRequest,
    content_key,
)
from rmorch.actors.config import ChatTemplateConfig, VllmEngineConfig, WeightsConfig
from rmorch.actors.judge_prompts import (
    BUILTIN,
    LABELS,
    Echo,
    ImageInput,
    Template,
    arena_hard_marks,
    builtin_texts,
    check_template_name,
    comparison_values,
    image_paths,
    load_template,
    messages,
    parse_rating,
    prompt_echo,
    question_parts,
    read_image,
    read_verdict,
    shorten,
    uses_ties_variant,
)
from rmorch.core.errors import SpecError, UserError
from rmorch.core.model_spec import NOT_SCORING
from rmorch.core.permutations import Permutations

DEFAULT_PERMUTATIONS = {"pairwise": "both", "nway": "cyclic", "rating": "single"}
# What a built-in template changes in the defaults: `rewardbench` runs as the official scripts do (one order per
# item: the seeded base order, permutation 0; their verdict rule; up to 2048 generated tokens); `arena_hard` as
# JudgeBench runs its ArenaHard judge (both orders, its verdict rule, up to 4096 generated tokens). Given keys stay.
TEMPLATE_DEFAULTS = {"rewardbench": {"permutations": "single", "parser": "rewardbench", "max_tokens": 2048},
                     "arena_hard": {"permutations": "both", "parser": "arena_hard", "max_tokens": 4096}}
# JudgeBench's ArenaHard judge asks once more when its first reply holds no verdict mark (utils/judges.py, e2c52c2)
ARENA_HARD_CONTINUE = "continue your judgment and finish by outputting a final verdict label"


@dataclass(frozen=True)
class Prompt:
    """One request as the judge is shown it: its messages, whether texts were shortened to fit, and what of it the
    judge might echo back (never read as a verdict)."""

    messages: list[dict[str, str]]
    truncated: bool
    echo: Echo
FIT_ATTEMPTS = 6
VERDICT_REPLY_TOKENS = 16  # room a probability verdict's prefix and label take
MARKER_TOKENS = 24  # room for each "[... N characters omitted ...]" marker


@dataclass(frozen=True, kw_only=True)
class JudgeConfig(WeightsConfig, ChatTemplateConfig, VllmEngineConfig):
    # path: vllm: local dir, hub id or builtin:NAME; openai: the model's name on the server. chat_template (vllm):
    # tokenizer | PATH to a Jinja template. tensor_parallel_size, enforce_eager, trust_remote_code, allow_pickle:
    # vllm only
    protocol: Literal["pairwise", "nway", "rating"] = "pairwise"
    # single | both | cyclic | all | random:K (default: pairwise both, nway cyclic; single with template rewardbench)
    permutations: str | None = None
    backend: Literal["vllm", "openai"] = "vllm"
    # a built-in template by name (rewardbench: allenai/reward-bench's own prompts), or a YAML file {system, user}
    # in the protocol's placeholders; default: rmorch's own short prompts
    template: str | None = None
    # strict: only the protocol's marks ([[A]], [[7]]), exactly one; lenient: also verdict phrases where the output
    # holds no mark; rewardbench: the official rule; arena_hard: JudgeBench's reading of [[A>>B]] ... [[B>>A]], a tie
    # read as no winner (rmorch.actors.judge_prompts "parsing"). Default: rewardbench with template rewardbench,
    # arena_hard with template arena_hard, else strict. The values are judge_prompts.PARSERS.
    parser: Literal["strict", "lenient", "rewardbench", "arena_hard"] | None = None
    # text: generate a reply and parse it; logprobs: start the reply with `verdict_prefix` and read the labels'
    # probabilities there, one prefill pass (rmorch.actors.backends.verdict_probs)
    verdict: Literal["text", "logprobs"] = "text"
    verdict_prefix: str = "[["  # logprobs: what the reply starts with before the label (the templates ask [[X]])
    system_role: Literal["system", "merge"] = "system"  # merge: system text into the user turn
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    max_tokens: int | None = None  # generated tokens per request (default 512; 2048 with template rewardbench)
    max_model_len: int = 4096  # prompt + output tokens (vllm)
    # vllm: outputs that do not depend on batching (rmorch.actors.backends.vllm_engine.batch_invariance); false
    # trades that for speed (bf16 on CPU, no batch-invariant kernels on GPU), recorded in run.json and the report
    deterministic: bool = True
    distributed_executor_backend: Literal["mp", "ray"] | None = None  # vllm, TP > 1: default mp on CPU, vLLM's choice on GPU
    lora: str | None = None  # vllm: a PEFT LoRA adapter directory applied to every request
    # auto: show images to vision-language models (vllm: iff vLLM loads the model as multimodal; openai: off)
    images: Literal["auto", "on", "off"] = "auto"
    # openai: http(s)://HOST:PORT/v1; default: OPENAI_BASE_URL of the environment the spec is read in
    base_url: str | None = None
    # openai: the environment variable that holds the key (never the key itself)
    api_key_env: str | None = field(default=None, metadata=NOT_SCORING)
    max_concurrency: int = field(default=8, metadata=NOT_SCORING)  # openai: requests in flight per replica
    timeout_s: float = field(default=120.0, metadata=NOT_SCORING)  # openai: per attempt
    # openai: retries on 408/409/429/5xx/timeouts (the openai library's: Retry-After, else backoff)
    request_retries: int = field(default=5, metadata=NOT_SCORING)
    # openai: the OpenAI-Organization / OpenAI-Project headers; default: OPENAI_ORG_ID / OPENAI_PROJECT_ID of the
    # environment the spec is read in
    organization: str | None = field(default=None, metadata=NOT_SCORING)
    project: str | None = field(default=None, metadata=NOT_SCORING)
    # openai: headers sent with every request (never credentials: those come from api_key_env)
    extra_headers: dict[str, str] | None = field(default=None, metadata=NOT_SCORING)

    def adapter_paths(self) -> tuple[str, ...]:
        return (self.lora,) if self.lora else ()

    def input_files(self) -> tuple[str, ...]:
        """The template file, if one is named (a built-in template's text is the kind's version)."""
        named = (self.template,) if self.template is not None and self.template not in BUILTIN else ()
        return super().input_files() + named

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.template is not None:
            try:
                check_template_name(self.template, self.protocol)
            except ValueError as e:
                raise SpecError("template", str(e)) from None
        defaults = {"permutations": DEFAULT_PERMUTATIONS[self.protocol], "parser": "strict", "max_tokens": 512,
                    **TEMPLATE_DEFAULTS.get(self.template or "", {})}
        defaulted = {key for key in defaults if getattr(self, key) is None}
        for key in defaulted:
            object.__setattr__(self, key, defaults[key])
        try:
            perms = Permutations.parse(self.permutations)
        except ValueError as e:
            raise SpecError("permutations", str(e)) from None
        if self.protocol == "rating" and perms.mode != "single":
            raise SpecError("permutations", "ratings see one response at a time: leave it out (or `single`)")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise SpecError("temperature", "temperature must be >= 0 and top_p in (0, 1]")
        if self.verdict == "logprobs" and self.temperature != 0:
            raise SpecError("temperature", "`verdict: logprobs` reads probabilities, it samples nothing: leave "
                            "temperature at 0")
        if "arena_hard" in (self.parser, self.template):
            if self.parser == "arena_hard" and self.protocol != "pairwise":
                raise SpecError("parser", "arena_hard reads pairwise verdicts only: use `protocol: pairwise`")
            if self.verdict == "logprobs":
                raise SpecError("verdict", "arena-hard verdicts ([[A>B]], [[A=B]], ...) are no single label after "
                                "`[[`: use `verdict: text`")
        # the context window is the engine's (vllm); a server (openai) knows its own
        if self.max_tokens < 1 or (self.backend == "vllm" and self.max_model_len <= self.max_tokens):
            if "max_tokens" in defaulted and self.template in TEMPLATE_DEFAULTS:
                raise SpecError("max_tokens", f"template {self.template} generates up to {self.max_tokens} tokens "
                                f"(the official budget), which needs max_model_len above it (now "
                                f"{self.max_model_len}): set max_model_len to the model's context, or a smaller "
                                f"max_tokens")
            raise SpecError("max_tokens", f"must be >= 1 and below max_model_len ({self.max_model_len})")
        if self.backend == "openai":
            if self.verdict == "logprobs" and self.protocol == "rating":
                raise SpecError("verdict", "ratings by `verdict: logprobs` need `backend: vllm` (a server returns "
                                "one token's alternatives; 10 takes two)")
            self._openai_defaults_from_environment()
            if not self.base_url:
                raise SpecError("base_url", "required with `backend: openai` (or set OPENAI_BASE_URL)")
            _check_extra_headers(self.extra_headers)
            for name in ("lora", "distributed_executor_backend"):
                if getattr(self, name) is not None:
                    raise SpecError(name, "only with `backend: vllm`")
            if self.enforce_eager:
                raise SpecError("enforce_eager", "only with `backend: vllm`")
            if self.tensor_parallel_size != 1:
                raise SpecError("tensor_parallel_size", "only with `backend: vllm` (the server decides)")
        else:
            for name in ("base_url", "api_key_env", "organization", "project", "extra_headers"):
                if getattr(self, name) is not None:
                    raise SpecError(name, "only with `backend: openai`")

    def _openai_defaults_from_environment(self) -> None:
        """The openai library's environment conventions, read where the spec is read (the driver), so the values
        reach replicas on every node and are recorded with the spec. A URL holding a password is refused."""
        for name, variable in (("base_url", "OPENAI_BASE_URL"), ("organization", "OPENAI_ORG_ID"),
                               ("project", "OPENAI_PROJECT_ID")):
            value = os.environ.get(variable, "").strip()
            if getattr(self, name) is None and value:
                if name == "base_url" and _url_password(value):
                    raise SpecError(name, f"the URL in {variable} holds a password, which would be written to the "
                                          "result store; give credentials through api_key_env")
                object.__setattr__(self, name, value)


# header names that carry credentials: a spec is written to the result store, so these come from api_key_env only
_CREDENTIAL_HEADER_WORDS = ("auth", "key", "token", "secret", "password", "cookie", "credential", "signature")


def _check_extra_headers(headers: object) -> None:
    if headers is None:
        return
    if not isinstance(headers, dict) or not all(isinstance(k, str) and k and isinstance(v, str)
                                                for k, v in headers.items()):
        raise SpecError("extra_headers", "expected a mapping of header names to strings")
    for name in headers:
        if any(word in name.lower() for word in _CREDENTIAL_HEADER_WORDS):
            raise SpecError("extra_headers", f"'{name}' looks like a credential, which would be written to the "
                                             "result store; give the key through api_key_env")


def _url_password(url: str) -> bool:
    try:
        return bool(urlsplit(url).password)
    except ValueError:
        return False


@register_kind
class Judge(ModelKind):
    kind = "judge"
    Config = JudgeConfig
    # 2: new default prompts, strict parsing, probability verdicts (issue 16)
    version = "2"
    description = "generative judge (vLLM or an OpenAI-compatible server): pairwise, N-way or 1-10 ratings"

    reward_bench_type = "Generative RM"

    @classmethod
    def presentation(cls, config: JudgeConfig) -> Presentation:
        return Presentation(config.protocol, config.permutations or "single")

    @classmethod
    def capabilities(cls, config: JudgeConfig) -> Capabilities:
        texts = builtin_texts(config.template)  # a built-in template's text is part of the identity, as a file's
        if config.backend == "openai":  # `path` names the model on a server: nothing is loaded here
            return Capabilities(backend="openai", files=config.input_files(), batch_invariant=False, texts=texts)
        caps = config.weights_capabilities("vllm", config.tensor_parallel_size)
        return dataclasses.replace(caps, batch_invariant=config.deterministic, texts=texts)

    @classmethod
    def cache_key(cls, config: JudgeConfig, request: Request) -> str | None:
        """Greedy judges: by content. Sampling judges draw with a seed from the item and order (`_seed`), so the
        item's identity is part of the key too. A rating rendered with a built-in template's Ties variant (chosen
        by the item, not the content) is keyed apart."""
        key = content_key(request, identity=config.temperature > 0)
        if isinstance(request, ScoreRequest) and uses_ties_variant(config.template, request.subset):
            key = hashlib.sha256(f"{key}\x00ties".encode()).hexdigest()[:32]
        return key

    def __init__(self, config: JudgeConfig, ctx: ActorContext, name: str):
        super().__init__(config, ctx, name)
        # a file replaces the protocol's own template; a built-in one every protocol's it has (rewardbench: all three),
        # so that items rated under a comparing protocol (RewardBench 2 Ties) get its rating prompt too
        own = {p for p in ("pairwise", "nway", "rating") if p == config.protocol or config.template in BUILTIN}
        self.templates = {p: load_template(p, config.template if p in own else None, name)
                          for p in ("pairwise", "nway", "rating")}
        self.sampling = SamplingConfig(config.temperature, config.top_p, config.max_tokens)
        self.generator: Generator = _make_generator(config, ctx, name)
        self.show_images = _shows_images(config, self.generator, name)

    # ---- ModelKind ---------------------------------------------------------------------------------------------
    def settings(self) -> InferenceSettings:
        g = self.generator
        return InferenceSettings(backend=g.backend, dtype=g.dtype, max_length=g.max_model_len,
                                 truncation_side="middle", chat_template=g.chat_template)

    def close(self) -> None:
        self.generator.close()

    def score(self, requests: list[Request]) -> list[ScoreOutcome]:
        images: list[list[ImageInput]] = []
        failed: dict[int, str] = {}  # request index -> why its images cannot be shown
        for i, r in enumerate(requests):
            try:
                images.append(self._images(r))
            except ValueError as e:
                failed[i] = str(e)
                images.append([])
        todo = [i for i in range(len(requests)) if i not in failed]
        prompts = {i: self._fit(requests[i], images[i]) for i in todo}
        if self.config.verdict == "logprobs":
            outcomes = self._probability_verdicts(requests, todo, prompts, images)
        else:
            extra = {"images": [images[i] for i in todo]} if self.show_images else {}
            gens = self.generator.generate([prompts[i].messages for i in todo], self.sampling,
                                           [self._seed(requests[i]) for i in todo], **extra)
            if self.config.parser == "arena_hard":
                gens = self._second_attempts(requests, todo, prompts, images, gens)
            outcomes = {i: self._outcome(requests[i], g, prompts[i]) for i, g in zip(todo, gens, strict=True)}
        return [ScoreOutcome(error=failed[i]) if i in failed else outcomes[i] for i in range(len(requests))]

    def _second_attempts(self, requests: list[Request], todo: list[int], prompts: dict[int, Prompt],
                         images: list[list[ImageInput]], gens: list[Generation]) -> list[Generation]:
        """`parser: arena_hard`, as JudgeBench's ArenaHard judge: a comparison whose reply holds no verdict mark at all
        is asked once more, its reply and ARENA_HARD_CONTINUE added to the conversation, and its verdict is read
        from both replies joined by a newline (as JudgeBench joins them). Where the second request fails (a prompt
        now too long), the first reply stands: no verdict."""
        again = [k for k, (i, g) in enumerate(zip(todo, gens)) if g.error is None and g.text is not None
                 and isinstance(requests[i], CompareRequest) and not arena_hard_marks(g.text, prompts[i].echo)]
        if not again:
            return gens
        convs = [[*prompts[todo[k]].messages, {"role": "assistant", "content": gens[k].text or ""},
                  {"role": "user", "content": ARENA_HARD_CONTINUE}] for k in again]
        extra = {"images": [images[todo[k]] for k in again]} if self.show_images else {}
        seconds = self.generator.generate(convs, self.sampling, [self._seed(requests[todo[k]]) for k in again],
                                          **extra)
        out = list(gens)
        for k, second in zip(again, seconds, strict=True):
            first = gens[k]
            if second.error is None and second.text is not None:
                out[k] = dataclasses.replace(first, text=f"{first.text}\n{second.text}",
                                             finish_reason=second.finish_reason,
                                             n_output_tokens=None if first.n_output_tokens is None
                                             or second.n_output_tokens is None
                                             else first.n_output_tokens + second.n_output_tokens)
        return out

    def _probability_verdicts(self, requests: list[Request], todo: list[int], prompts: dict[int, Prompt],
                              images: list[list[ImageInput]]) -> dict[int, ScoreOutcome]:
        """`verdict: logprobs`: one backend call per label set (ratings 1-10; comparisons of n responses)."""
        groups: dict[tuple[str, ...], list[int]] = {}
        for i in todo:
            r = requests[i]
            labels = RATING_LABELS if isinstance(r, ScoreRequest) else tuple(LABELS[: len(r.responses)])
            groups.setdefault(labels, []).append(i)
        outcomes: dict[int, ScoreOutcome] = {}
        for labels, idx in groups.items():
            extra = {"images": [images[i] for i in idx]} if self.show_images else {}
            found = self.generator.verdict_probs([prompts[i].messages for i in idx], self.config.verdict_prefix,
                                                 list(labels), **extra)
            for i, lp in zip(idx, found, strict=True):
                outcomes[i] = _probability_outcome(requests[i], lp, labels, prompts[i].truncated)
        return outcomes

    # ---- internals ---------------------------------------------------------------------------------------------
    def _template(self, r: Request) -> Template:
        """The template of this request, in the variant it needs (`Template.for_request`: built-in templates)."""
        if isinstance(r, ScoreRequest):
            return self.templates["rating"].for_request(r.prompt, r.subset, 1)
        template = self.templates["pairwise" if self.config.protocol == "pairwise" else "nway"]
        return template.for_request(r.prompt, r.subset, len(r.responses))

    def _values(self, r: Request, parts: dict[str, str], responses: list[str]) -> dict[str, str]:
        """The placeholders' values: the conversation's parts (`question_parts`) and the responses."""
        if isinstance(r, ScoreRequest):
            return {**parts, "response": responses[0]}
        return {**comparison_values(parts.get("question", ""), responses), **parts}

    def _images(self, r: Request) -> list[ImageInput]:
        """The images of the request's context, read and checked (ValueError naming the file), if shown."""
        if not self.show_images:
            return []
        paths = image_paths(r.context)
        return [read_image(p) for p in paths]

    def _fit(self, r: Request, images: list[ImageInput]) -> Prompt:
        """The request's messages, shortened (head and tail of every text) until they fit the context window
        (image tokens included, where the backend counts them)."""
        responses = [r.response] if isinstance(r, ScoreRequest) else list(r.responses)
        template = self._template(r)
        parts = question_parts(template, r.prompt, r.context, images_shown=self.show_images)
        values = self._values(r, parts, responses)
        msgs = messages(template, values, self.config.system_role)
        limit = self.generator.max_model_len
        if limit is None:
            return Prompt(msgs, False, prompt_echo(template, values))
        budget = limit - self._reply_tokens()
        n = self._prompt_tokens(msgs, images)
        if n is None or n <= budget:
            return Prompt(msgs, False, prompt_echo(template, values))
        texts = [*parts.values(), *responses]
        empty = self._values(r, dict.fromkeys(parts, ""), [""] * len(responses))
        overhead = self._prompt_tokens(messages(template, empty, self.config.system_role), images) or 0
        for _ in range(FIT_ATTEMPTS):
            room = budget - overhead - MARKER_TOKENS * len(texts)
            if room <= 0:
                break  # the template alone does not fit
            factor = room / max(n - overhead, 1) * 0.9  # every text keeps the same share of itself
            texts = [shorten(t, int(len(t) * factor)) for t in texts]
            values = self._values(r, dict(zip(parts, texts)), texts[len(parts):])
            msgs = messages(template, values, self.config.system_role)
            n = self._prompt_tokens(msgs, images) or 0
            if n <= budget:
                break
        return Prompt(msgs, True, prompt_echo(template, values))  # still too long: the backend says so, per request

    def _reply_tokens(self) -> int:
        """Tokens the reply may take: max_tokens, or for probability verdicts the prefix and a label."""
        return VERDICT_REPLY_TOKENS if self.config.verdict == "logprobs" else self.config.max_tokens

    def _prompt_tokens(self, msgs: list[dict[str, str]], images: list[ImageInput]) -> int | None:
        if images:
            return self.generator.prompt_tokens(msgs, images=images)  # type: ignore[call-arg]
        return self.generator.prompt_tokens(msgs)

    def _seed(self, r: Request) -> int:
        """A per-request sampling seed from (sweep seed, item, candidate or order): batch-independent."""
        which = f"c{r.candidate}" if isinstance(r, ScoreRequest) else "o" + ",".join(map(str, r.order))
        digest = hashlib.sha256(f"{self.ctx.seed}\x00{r.item_id}\x00{which}".encode()).digest()
        return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF

    def _outcome(self, r: Request, g: Generation, prompt: Prompt) -> ScoreOutcome:
        truncated = prompt.truncated
        if g.error is not None:
            return ScoreOutcome(error=g.error, raw_output=g.text, n_tokens=g.n_prompt_tokens, truncated=truncated)
        if isinstance(r, ScoreRequest):
            rating = parse_rating(g.text, self.config.parser, prompt.echo)
            return ScoreOutcome(score=rating, raw_output=g.text, parsed=rating is not None,
                                n_tokens=g.n_prompt_tokens, truncated=truncated)
        # a verdict read may name no winner (a tie under `parser: arena_hard`): parsed, no choice
        choice, read = read_verdict(g.text, len(r.responses), self.config.parser, prompt.echo)
        return ScoreOutcome(choice=choice, raw_output=g.text, parsed=read, n_tokens=g.n_prompt_tokens,
                            truncated=truncated)


def _probability_outcome(r: Request, lp: LabelProbs, labels: tuple[str, ...], truncated: bool) -> ScoreOutcome:
    """A probability verdict as an outcome: the labels' probabilities kept (`probs`), the verdict their argmax (the
    expected rating for ratings). `parsed` only where the judge's own most likely next token starts a label: asked
    for its verdict, it would have given one."""
    if lp.error is not None or lp.probs is None:
        return ScoreOutcome(error=lp.error or "no probabilities", n_tokens=lp.n_prompt_tokens, truncated=truncated)
    parsed = bool(lp.greedy_label)
    raw = describe(labels, lp.probs, lp.mass or 0.0, lp.greedy_label)
    if isinstance(r, ScoreRequest):
        rating = sum(float(lb) * p for lb, p in zip(labels, lp.probs))
        return ScoreOutcome(score=rating if parsed else None, probs=lp.probs, raw_output=raw, parsed=parsed,
                            n_tokens=lp.n_prompt_tokens, truncated=truncated)
    choice = verdict_from_probs(lp.probs) if parsed else None
    return ScoreOutcome(choice=choice, probs=lp.probs, raw_output=raw, parsed=choice is not None,
                        n_tokens=lp.n_prompt_tokens, truncated=truncated)


def _shows_images(config: JudgeConfig, generator: Generator, name: str) -> bool:
    """Whether the judge is shown images (see the module docstring); `on` for a text-only vLLM model is refused."""
    if config.images == "off":
        return False
    multimodal = bool(getattr(generator, "multimodal", False))
    if config.backend == "openai":
        return config.images == "on"
    if config.images == "on" and not multimodal:
        generator.close()
        raise UserError(f"model '{name}': `images: on`, but vLLM does not load '{config.path}' as a model that "
                        "takes images (no vision tower); use a vision-language model or `images: off`")
    return multimodal


def _make_generator(config: JudgeConfig, ctx: ActorContext, name: str) -> Generator:
    # late: the backends import openai / torch / vLLM, which `import rmorch.actors` must not
    if config.backend == "openai":
        from rmorch.actors.backends.openai_http import OpenAIChatBackend

        return OpenAIChatBackend(config.base_url or "", config.path, model_name=name, api_key_env=config.api_key_env,
                                 max_concurrency=config.max_concurrency, timeout_s=config.timeout_s,
                                 max_retries=config.request_retries, organization=config.organization,
                                 project=config.project, extra_headers=config.extra_headers)
    from rmorch.actors.backends.hf import local_model_path
    from rmorch.actors.backends.vllm_generate import VllmGenerator

    return VllmGenerator(local_model_path(config, name), model_name=name, dtype=config.dtype,
                         max_model_len=config.max_model_len, tensor_parallel_size=config.tensor_parallel_size,
                         lora=config.lora, chat_template=config.chat_template,
                         trust_remote_code=config.trust_remote_code, revision=config.revision, seed=ctx.seed,
                         distributed_executor_backend=config.distributed_executor_backend,
                         enforce_eager=config.enforce_eager, deterministic=config.deterministic)
