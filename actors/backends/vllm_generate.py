"""vLLM text-generation backend of generative judges (`backend: vllm`), the `Generator` of `generation.py`.

- Tokenisation is ours, as in `vllm_pool`: each conversation is rendered with the chat template of the transformers
  tokenizer of the same path plus the generation prompt, encoded with `text.encode`'s duplicate-BOS guard, and sent
  as a `TokensPrompt`. vLLM never tokenises a prompt, nor detokenises the output (`detokenize=False`): the output
  ids are decoded in one piece by the same tokenizer (skipping special tokens), as `transformers` would. vLLM's own
  copy of the tokenizer only supplies the EOS ids that stop generation (with the model's generation_config).
- One engine (`vllm.LLM`) per instance, built in `__init__` and reused; `close()` shuts its engine core down (without
  it the process exits with 134).
- Every `generate()` call sends all its requests in ONE `llm.generate([...], [...])` call, one `SamplingParams` per
  conversation with that conversation's seed (greedy when temperature is 0), so an output does not depend on which
  other conversations share the batch. A prompt longer than `max_model_len - max_tokens` is not sent: its
  `Generation` carries the error, the rest of the batch runs.
- `lora`: a local PEFT adapter directory. The engine gets `enable_lora=True` and a `max_lora_rank` that fits the
  adapter; every request carries the same `LoRARequest`. The adapter is loaded once at start-up
  (`add_lora`), so a bad adapter fails the load, not every shard. On CPU vLLM's LoRA path (PunicaWrapperCPU) works
  but turns torch.compile off (`cpu.py`: lora_config -> CompilationMode.NONE): faster engine start, slower decoding.
- Images (`multimodal`: vLLM loads the model as multimodal, with an image placeholder): a conversation may come
  with images (`judge_prompts.ImageInput`). They go at the start of its first user turn as the model's image
  placeholder (vLLM's `get_placeholder_str`, e.g. "<image>"), in the chat template's own form: chat templates that
  take OpenAI-style content parts (detected once by rendering a probe) get `{"type": "image"}` parts, string
  templates get "<placeholder>\n" before the text, as vLLM's chat path does. The prompt is still our token ids;
  the decoded images ride along as `multi_modal_data={"image": [...]}` in the same single `llm.generate` call, and
  vLLM expands each placeholder into the image's tokens. A placeholder string written inside an item's text is
  shown as "[image]" (else it would become a second image slot). The expanded length, counted up front with the
  model's transformers processor, is checked against the window like any prompt; `n_prompt_tokens` is the length
  vLLM reports after expansion, image tokens included.
- `enforce_eager`: no torch.compile (on CPU the compile warm-up is most of a 60-160 s engine start; eager starts in
  about 40 s, decodes slower): for short runs and tests.
- `deterministic` (the judge's default): the engine is started so that an output does not depend on what else it
  is sent (`vllm_engine.batch_invariance`: on CPU one sequence at a time without prefix caching; on GPUs vLLM's
  batch-invariant kernels).
- Probability verdicts (`verdict_probs`): the reply is started with the verdict prefix and the labels' exact
  log-probabilities are read at the next position (`logprob_token_ids`), one-token greedy requests, all in one call.
- Engine start, CPU defaults, tensor parallel and executor choice: `vllm_engine`.
"""

from __future__ import annotations

import io
import json
import logging
import os
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from rmorch.actors.backends.generation import Generation, Message, SamplingConfig
from rmorch.actors.backends.hf import load_tokenizer, offline_hint
from rmorch.actors.backends.text import encode, render, setup_chat_template
from rmorch.actors.backends.verdict_probs import LabelProbs, Path, combine, label_paths
from rmorch.actors.backends.vllm_engine import engine_dtype, shutdown, start_engine
from rmorch.core.errors import UserError

if TYPE_CHECKING:
    from rmorch.actors.judge_prompts import ImageInput

log = logging.getLogger(__name__)

IMAGE_IN_TEXT = "[image]"  # what a model's image placeholder written inside an item's text is shown as
_PROBE = "rmorch-content-parts-probe"
_IMAGE_TOKEN_CACHE = 4096  # images whose token count is remembered (the fit loop asks for the same ones again)

# vLLM's LoRAConfig.max_lora_rank accepts only these values (vllm.config.lora.MaxLoRARanks).
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)

def lora_max_rank(adapter_dir: str) -> int:
    """The smallest `max_lora_rank` vLLM accepts that holds the adapter's rank (including its rank_pattern)."""
    config_file = os.path.join(adapter_dir, "adapter_config.json")
    try:
        with open(config_file, encoding="utf-8") as f:
            config = json.load(f)
        rank = max([int(config["r"]), *(int(v) for v in (config.get("rank_pattern") or {}).values())])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"LoRA adapter '{adapter_dir}': cannot read the rank from {config_file}: {e}") from None
    fits = [r for r in LORA_RANKS if r >= rank]
    if not fits:
        raise UserError(f"LoRA adapter '{adapter_dir}': rank {rank} exceeds vLLM's largest max_lora_rank "
                        f"{LORA_RANKS[-1]}")
    return fits[0]


class VllmGenerator:
    """One vLLM engine; each `generate` call is one batched `llm.generate` over token-id prompts."""

    backend = "vllm"

    def __init__(self, path: str, *, model_name: str, dtype: str = "auto", max_model_len: int | None = None,
                 tensor_parallel_size: int = 1, lora: str | None = None, chat_template: str = "tokenizer",
                 trust_remote_code: bool = False, revision: str | None = None, seed: int = 0,
                 distributed_executor_backend: str | None = None, enforce_eager: bool = False,
                 deterministic: bool = False):
        from transformers import AutoConfig


        self.llm: Any = None
        self.model_name = model_name
        load = SimpleNamespace(path=path, trust_remote_code=trust_remote_code, revision=revision)
        self.tokenizer = load_tokenizer(path, load, model_name)
        try:
            hf_config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code, revision=revision)
        except (OSError, ValueError) as e:
            raise UserError(f"model '{model_name}': cannot load '{path}': {e}{offline_hint(path)}") from None
        self.chat_template = setup_chat_template(self.tokenizer, chat_template, model_name)
        limit = getattr(hf_config.get_text_config(), "max_position_embeddings", None)
        if max_model_len is None:
            max_model_len = limit
        elif limit:
            max_model_len = min(max_model_len, limit)

        kwargs: dict[str, Any] = {"enforce_eager": True} if enforce_eager else {}
        self.lora_request = None
        if lora is not None:
            if not os.path.isfile(os.path.join(lora, "adapter_config.json")):
                raise UserError(f"model '{model_name}': LoRA adapter '{lora}' is not a directory with "
                                "adapter_config.json (a local PEFT adapter is needed)")
            kwargs.update(enable_lora=True, max_loras=1, max_lora_rank=lora_max_rank(lora))

        self.llm = start_engine(model_name, path, dtype=dtype, tensor_parallel_size=tensor_parallel_size,
                                distributed_executor_backend=distributed_executor_backend,
                                max_model_len=max_model_len, seed=seed, trust_remote_code=trust_remote_code,
                                revision=revision, deterministic=deterministic, **kwargs)
        self.dtype = engine_dtype(self.llm)
        self.max_model_len = int(self.llm.llm_engine.model_config.max_model_len)
        if lora is not None:
            from vllm.lora.request import LoRARequest

            request = LoRARequest(os.path.basename(os.path.normpath(lora)), 1, os.path.abspath(lora))
            try:
                self.llm.llm_engine.add_lora(request)  # load now: a bad adapter fails here, not in every shard
            except Exception as e:  # noqa: BLE001 - any failure to load the adapter is the adapter's
                self.close()
                raise UserError(f"model '{model_name}': vLLM cannot load LoRA adapter '{lora}': {e}") from None
            self.lora_request = request

        # `multimodal`: the engine takes images (vLLM loads the model as multimodal, with an image placeholder).
        self.multimodal = False
        self.max_images = 0
        self._placeholder_of: Any = None  # i (1-based) -> the model's image placeholder string
        self._processor: Any = None  # transformers processor: counts the tokens an image expands to
        self._content_parts = False  # the chat template takes OpenAI-style content parts
        self._image_tokens: dict[ImageInput, int] = {}
        model_config = self.llm.llm_engine.model_config
        if model_config.is_multimodal_model:
            self._setup_images(model_config, path, trust_remote_code, revision)

    def _setup_images(self, model_config: Any, path: str, trust_remote_code: bool, revision: str | None) -> None:
        from transformers import AutoProcessor
        from vllm.model_executor.model_loader import get_model_cls

        model_cls: Any = get_model_cls(model_config)
        try:
            placeholder = model_cls.get_placeholder_str("image", 1)
        except ValueError:  # a multimodal model without images (audio, video only)
            placeholder = None
        self.max_images = model_config.multimodal_config.get_limit_per_prompt("image") if placeholder else 0
        if not self.max_images:
            log.info("model %s: vLLM's %s takes no images in text prompts", self.model_name, model_cls.__name__)
            return
        self.multimodal = True
        self._placeholder_of = lambda i: model_cls.get_placeholder_str("image", i)
        try:
            self._processor = AutoProcessor.from_pretrained(path, trust_remote_code=trust_remote_code,
                                                            revision=revision)
        except Exception as e:  # noqa: BLE001 - counting is a pre-check; vLLM still validates every prompt
            log.warning("model %s: no transformers processor (%s); image tokens are not counted before sending",
                        self.model_name, e)
        self._content_parts = self.chat_template != "plain" and _takes_content_parts(self.tokenizer)

    # ---- prompts -----------------------------------------------------------------------------------------------
    def encode(self, messages: list[Message], images: list[ImageInput] | None = None) -> list[int]:
        """The prompt's token ids (chat template + generation prompt, duplicate-BOS guard, never truncated), with
        one image placeholder per image (not yet expanded into the image's tokens)."""
        chat: list[dict[str, Any]] = list(messages)
        if images:
            chat = self._with_images(messages, len(images))
        return encode(self.tokenizer, render(self.tokenizer, chat, self.chat_template, generation=True)).ids

    def prompt_tokens(self, messages: list[Message], images: list[ImageInput] | None = None) -> int:
        """Tokens of the prompt as the model sees it: text plus what every image expands to (where counted)."""
        return len(self.encode(messages, images)) + sum(self.image_tokens(im, k)
                                                        for k, im in enumerate(images or [], 1))

    def image_tokens(self, image: ImageInput, index: int = 1) -> int:
        """How many tokens the placeholder of this image expands to, beyond the placeholder's own (0 if the
        processor cannot say). Counted by the model's transformers processor, as vLLM's processing does."""
        if image in self._image_tokens:
            return self._image_tokens[image]
        n = 0
        if self._processor is not None:
            placeholder = self._placeholder_of(index)
            try:
                expanded = self._processor(text=[placeholder], images=[[_decode(image)]])["input_ids"][0]
                n = max(len(expanded) - len(self._processor.tokenizer(placeholder)["input_ids"]), 0)
            except Exception as e:  # noqa: BLE001 - a processor quirk must not fail the item; vLLM checks it
                log.debug("model %s: cannot count the tokens of image %s: %s", self.model_name, image.path, e)
        if len(self._image_tokens) >= _IMAGE_TOKEN_CACHE:
            self._image_tokens.clear()
        self._image_tokens[image] = n
        return n

    def _with_images(self, messages: list[Message], n_images: int) -> list[dict[str, Any]]:
        """The messages with n image placeholders at the start of the first user turn."""
        placeholders = [self._placeholder_of(k) for k in range(1, n_images + 1)]
        chat: list[dict[str, Any]] = []
        placed = False
        for m in messages:
            text = m["content"]
            for p in set(placeholders):
                text = text.replace(p, IMAGE_IN_TEXT)
            if self._content_parts:
                parts: list[dict[str, str]] = [{"type": "text", "text": text}]
                if m["role"] == "user" and not placed:
                    parts = [{"type": "image"} for _ in placeholders] + parts
                    placed = True
                chat.append({"role": m["role"], "content": parts})
            else:
                if m["role"] == "user" and not placed:
                    text = "".join(p + "\n" for p in placeholders) + text
                    placed = True
                chat.append({"role": m["role"], "content": text})
        if not placed:
            raise ValueError("a conversation with images needs a user turn to put them in")
        return chat

    # ---- generation --------------------------------------------------------------------------------------------
    def generate(self, conversations: list[list[Message]], sampling: SamplingConfig, seeds: list[int],
                 images: list[list[ImageInput]] | None = None) -> list[Generation]:
        """One Generation per conversation, all sent in one `llm.generate` call. `images[i]` are shown with
        conversation i (multimodal models only; an empty list or None: text only)."""
        from vllm import SamplingParams

        if len(seeds) != len(conversations) or (images is not None and len(images) != len(conversations)):
            raise ValueError(f"{len(conversations)} conversations but {len(seeds)} seeds"
                             + (f" and {len(images)} image lists" if images is not None else ""))
        if self.llm is None:
            raise RuntimeError("VllmGenerator is closed")
        if images is not None and any(images) and not self.multimodal:
            raise ValueError(f"model '{self.model_name}' is not a vision-language model: it cannot be shown images")
        out: list[Generation] = []
        sent: list[int] = []  # indices of the conversations sent to the engine
        prompts, params = [], []
        room = self.max_model_len - sampling.max_tokens
        for i, (messages, seed) in enumerate(zip(conversations, seeds)):
            shown = images[i] if images is not None else []
            out.append(Generation())
            try:
                prompt = self._prompt(messages, shown)
            except ValueError as e:  # an image that will not decode, too many images, no user turn
                out[i].error = str(e)
                continue
            n = len(prompt["prompt_token_ids"]) + sum(self.image_tokens(im, k) for k, im in enumerate(shown, 1))
            out[i].n_prompt_tokens = n
            if n > room:
                out[i].error = (f"prompt too long: {n} tokens, but max_model_len {self.max_model_len} - "
                                f"max_tokens {sampling.max_tokens} leaves {max(room, 0)}")
                continue
            sent.append(i)
            prompts.append(prompt)
            params.append(SamplingParams(temperature=sampling.temperature, top_p=sampling.top_p,
                                         max_tokens=sampling.max_tokens, seed=seed, detokenize=False))
        if not prompts:
            return out
        results = self.llm.generate(prompts, params, use_tqdm=False, lora_request=self.lora_request)
        for i, r in zip(sent, results, strict=True):
            c = r.outputs[0]
            g = out[i]
            g.text = self.tokenizer.decode(c.token_ids, skip_special_tokens=True)
            g.n_output_tokens, g.finish_reason = len(c.token_ids), c.finish_reason
            if r.prompt_token_ids is not None:
                g.n_prompt_tokens = len(r.prompt_token_ids)  # after vLLM expanded the image placeholders
        return out

    def verdict_probs(self, conversations: list[list[Message]], prefix: str, labels: list[str],
                      images: list[list[ImageInput]] | None = None) -> list[LabelProbs]:
        """Probability verdicts (`verdict_probs.py`): each conversation's reply is started with `prefix`, and the
        labels' probabilities are read where they would come next, all in ONE `llm.generate` call of one-token,
        greedy requests (`logprob_token_ids`: exact log-probabilities over the whole vocabulary, however unlikely).
        Labels of several tokens add one request per distinct label prefix."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        if self.llm is None:
            raise RuntimeError("VllmGenerator is closed")
        tokens = label_paths(self.tokenizer, prefix, labels, self.model_name)
        queries = tokens.queries()
        out: list[LabelProbs] = []
        sent: list[tuple[int, Path]] = []  # (conversation, label-path prefix) of each request sent
        prompts, params = [], []
        room = self.max_model_len - 1 - max(len(p) for p in tokens.paths)
        for i, messages in enumerate(conversations):
            shown = images[i] if images is not None else []
            try:
                prompt = self._prompt(messages, shown)
            except ValueError as e:
                out.append(LabelProbs(error=str(e)))
                continue
            base = list(prompt["prompt_token_ids"]) + tokens.prefix
            n = len(base) + sum(self.image_tokens(im, k) for k, im in enumerate(shown, 1))
            if n > room:
                out.append(LabelProbs(n_prompt_tokens=n, error=f"prompt too long: {n} tokens with the verdict "
                                      f"prefix, but max_model_len {self.max_model_len} leaves {max(room, 0)}"))
                continue
            out.append(LabelProbs(n_prompt_tokens=n))
            for ctx, wanted in queries.items():
                p = TokensPrompt(prompt_token_ids=base + list(ctx))
                if shown:
                    p["multi_modal_data"] = prompt["multi_modal_data"]
                prompts.append(p)
                params.append(SamplingParams(temperature=0.0, max_tokens=1, detokenize=False,
                                             logprob_token_ids=wanted))
                sent.append((i, ctx))
        if not prompts:
            return out
        results = self.llm.generate(prompts, params, use_tqdm=False, lora_request=self.lora_request)
        read: dict[int, dict[Path, dict[int, float]]] = {}
        greedy: dict[int, int] = {}
        for (i, ctx), r in zip(sent, results, strict=True):
            c = r.outputs[0]
            read.setdefault(i, {})[ctx] = {t: lp.logprob for t, lp in c.logprobs[0].items()}
            if not ctx:
                greedy[i] = c.token_ids[0]
        for i, logprobs in read.items():
            probs, mass = combine(tokens, logprobs)
            out[i] = LabelProbs(probs=probs, mass=mass, greedy_label=greedy[i] in tokens.first_tokens(),
                                n_prompt_tokens=out[i].n_prompt_tokens)
        return out

    def _prompt(self, messages: list[Message], images: list[ImageInput]) -> Any:
        from vllm.inputs import TokensPrompt

        if not images:
            return TokensPrompt(prompt_token_ids=self.encode(messages))
        if len(images) > self.max_images:
            raise ValueError(f"{len(images)} images, but the engine takes at most {self.max_images} per prompt")
        decoded = [_decode(im) for im in images]
        return TokensPrompt(prompt_token_ids=self.encode(messages, images), multi_modal_data={"image": decoded})

    def close(self) -> None:
        llm, self.llm = getattr(self, "llm", None), None
        shutdown(llm)


def _decode(image: ImageInput) -> Any:
    """The image as an RGB PIL image (what vLLM's image processors take); ValueError if it does not decode."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(image.data)) as im:
            return im.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise ValueError(f"cannot decode image '{image.path}': {e}") from None


def _takes_content_parts(tokenizer: Any) -> bool:
    """Whether the tokenizer's chat template renders OpenAI-style content parts (a list of {"type": ...}) rather
    than only string content: the probe text must come out as text, not as the list's repr."""
    probe = [{"role": "user", "content": [{"type": "text", "text": _PROBE}]}]
    try:
        text = tokenizer.apply_chat_template(probe, tokenize=False, add_generation_prompt=True)
    except Exception:  # noqa: BLE001 - a template that fails on parts takes strings
        return False
    return isinstance(text, str) and _PROBE in text and "'type'" not in text
