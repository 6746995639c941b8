"""The encoder-decoder (Cho et al. 2014), with optional additive attention (Bahdanau et
al. 2014), for any registry cell: the `seq2seq` head of the model registry (grucli.model).

    encoder:  e_j = Embed_src(x_j);  h_1..h_S = Cell_enc(e)              (D = 2 if bidirectional)
    bridge:   s_0 = tanh(W_b [h_S forward; h_1 backward]) per layer (D = 2), else s_0 = h_S
    context:  none:     c_t = c = [h_S forward; h_1 backward]  for every step (Cho et al. feed it to each)
              additive: a_tj = v^T tanh(W_s s_{t-1} + W_h h_j),  alpha_t = softmax_j(a_t),  c_t = sum_j alpha_tj h_j
    decoder:  s_t = Cell_dec([Embed_tgt(y_{t-1}); c_t], s_{t-1})
    output:   p(y_t | y_<t, x) = softmax(W_o [s_t; c_t] + b_o)

Training is teacher-forced: the decoder reads the reference y_<t. In eval mode the model
also decodes on its own (greedy, or a beam of `beam` hypotheses), so validation and test
metrics score what the model would write. Inputs arrive as one (B, S + T) token tensor:
the source padded to S, then the decoder's input <bos> y_1 .. y_{T-1} padded to T, so the
training loop treats this model like any other.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from grucli import cells
from grucli.tasks.vocab import BOS, EOS, PAD



class Seq2Seq(nn.Module):
    def __init__(self, cell: str, *, src_vocab: int, tgt_vocab: int, src_len: int, out_len: int, hidden_size: int,
                 embed_dim: int | None = None, num_layers: int = 1, bidirectional: bool = False, dropout: float = 0.0,
                 attention: str = "none", beam: int = 1, impl: str = "auto", forget_bias: float | None = None):
        super().__init__()
        self.cell = cells.get(cell)
        self.impl = cells.resolve_impl(self.cell, impl)
        H, E, D = hidden_size, embed_dim or default_embed(hidden_size), 2 if bidirectional else 1
        self.hidden, self.layers, self.dirs = H, num_layers, D
        self.src_len, self.out_len, self.attention, self.beam = src_len, out_len, attention, beam
        self.src_embed = nn.Embedding(src_vocab, E, padding_idx=PAD)
        self.tgt_embed = nn.Embedding(tgt_vocab, E, padding_idx=PAD)
        self.encoder = cells.make(self.cell, E, H, num_layers, bidirectional, dropout, self.impl, forget_bias)
        self.bridge = nn.Linear(D * H, H) if D == 2 else None
        self.decoder = cells.make(self.cell, E + D * H, H, num_layers, False, dropout, self.impl, forget_bias)
        if attention == "additive":
            self.att_s = nn.Linear(H, H, bias=False)  # W_s
            self.att_h = nn.Linear(D * H, H)  # W_h (its bias is the attention MLP's)
            self.att_v = nn.Linear(H, 1, bias=False)  # v
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(H + D * H, tgt_vocab)

    # ------------------------------------------------------------------ pieces
    def encode(self, src: torch.Tensor):
        """src (B, S) -> outputs (B, S, D*H), padding mask (B, S), summary (B, D*H), decoder state."""
        lengths = (src != PAD).sum(1).clamp(min=1)
        packed = pack_padded_sequence(self.src_embed(src), lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, state = self.encoder(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])  # (B, S, D*H)
        states = state if isinstance(state, tuple) else (state,)
        B, H, L, D = src.shape[0], self.hidden, self.layers, self.dirs
        tops = states[0].view(L, D, B, H)[-1]  # (D, B, H): the top layer's last forward / backward states
        summary = tops.transpose(0, 1).reshape(B, D * H)  # c of Cho et al.
        init = []
        for s in states:
            s = s.view(L, D, B, H)
            if self.bridge is not None:
                s = self.bridge(s.permute(0, 2, 1, 3).reshape(L, B, D * H))  # (L, B, H)
                s = torch.tanh(s) if not init else s  # h in [-1, 1]; a memory c stays linear
            else:
                s = s[:, 0]
            init.append(s.contiguous())
        return out, src != PAD, summary, tuple(init)

    def _context(self, memory, state):
        enc_out, mask, summary, keys = memory
        if self.attention != "additive":
            return summary
        s = state[0][-1]  # (B, H): the top layer's s_{t-1}
        scores = self.att_v(torch.tanh(self.att_s(s)[:, None] + keys)).squeeze(-1)  # (B, S)
        alpha = torch.softmax(scores.masked_fill(~mask, float("-inf")), -1)
        return torch.bmm(alpha[:, None], enc_out).squeeze(1)  # (B, D*H)

    def _step(self, token, memory, state):
        """One decoder step from `token` (B,): logits (B, V) and the new state."""
        ctx = self._context(memory, state)
        inp = torch.cat([self.tgt_embed(token), ctx], -1)[:, None]  # (B, 1, E + D*H)
        out, state = self.decoder(inp, state if len(state) > 1 else state[0])
        state = state if isinstance(state, tuple) else (state,)
        return self.out(self.drop(torch.cat([out[:, 0], ctx], -1))), state

    def _prepare(self, src):
        """What every decoder step reads (encoder outputs, mask, summary, W_h h_j once per
        source) and the decoder's initial state."""
        enc_out, mask, summary, state = self.encode(src)
        keys = self.att_h(enc_out) if self.attention == "additive" else None  # (B, S, H)
        return (enc_out, mask, summary, keys), state

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor, lengths=None):
        """x (B, S + T). Train mode: teacher-forced logits (B, T, V). Eval mode: those and
        the model's own decoding (B, T) of token ids (PAD after its <eos>)."""
        src, dec_in = x[:, :self.src_len], x[:, self.src_len:]
        memory, state = self._prepare(src)
        summary = memory[2]
        if self.attention == "additive":
            logits, s = [], state
            for t in range(dec_in.shape[1]):
                step, s = self._step(dec_in[:, t], memory, s)
                logits.append(step)
            forced = torch.stack(logits, 1)  # (B, T, V)
        else:  # the context is fixed: the decoder runs over the whole reference at once
            T = dec_in.shape[1]
            inp = torch.cat([self.tgt_embed(dec_in), summary[:, None].expand(-1, T, -1)], -1)
            out, _ = self.decoder(inp, state if len(state) > 1 else state[0])
            forced = self.out(self.drop(torch.cat([out, summary[:, None].expand(-1, T, -1)], -1)))
        if self.training:
            return forced
        with torch.no_grad():
            decoded = self.greedy(memory, state) if self.beam == 1 else torch.stack(
                [self.beam_search(src[i:i + 1], self.beam) for i in range(len(src))])
        return forced, decoded

    @torch.no_grad()
    def greedy(self, memory, state) -> torch.Tensor:
        enc_out = memory[0]
        B = enc_out.shape[0]
        token = torch.full((B,), BOS, dtype=torch.long, device=enc_out.device)
        out = torch.full((B, self.out_len), PAD, dtype=torch.long, device=enc_out.device)
        done = torch.zeros(B, dtype=torch.bool, device=enc_out.device)
        for t in range(self.out_len):
            logits, state = self._step(token, memory, state)
            token = logits.argmax(-1)
            out[:, t] = torch.where(done, torch.full_like(token, PAD), token)
            done |= token == EOS
            if done.all():
                break
        return out

    @torch.no_grad()
    def beam_search(self, src: torch.Tensor, width: int) -> torch.Tensor:
        """The most likely output of one source (1, S) under a beam of `width` hypotheses
        (sum of log-probabilities; a finished hypothesis keeps its score). (out_len,)"""
        memory, state = self._prepare(src)
        beams = [([], 0.0, state, False)]  # tokens, log-prob, state, finished
        for _ in range(self.out_len):
            live = [b for b in beams if not b[3]]
            if not live:
                break
            candidates = [b for b in beams if b[3]]
            for tokens, score, st, _ in live:
                last = torch.tensor([tokens[-1] if tokens else BOS], device=src.device)
                logits, new = self._step(last, memory, st)
                logp = F.log_softmax(logits[0].double(), -1)
                top = logp.topk(width)
                candidates += [(tokens + [int(i)], score + float(v), new, int(i) == EOS)
                               for v, i in zip(top.values, top.indices)]
            beams = sorted(candidates, key=lambda b: -b[1])[:width]
        best = max(beams, key=lambda b: b[1])[0]
        out = torch.full((self.out_len,), PAD, dtype=torch.long, device=src.device)
        out[:len(best)] = torch.tensor(best[:self.out_len], device=src.device)
        return out


def default_embed(hidden: int) -> int:
    return max(8, min(64, hidden))


def count(cell: str, hidden: int, *, src_vocab: int, tgt_vocab: int, layers: int = 1, bidirectional: bool = False,
          embed_dim: int | None = None, attention: str = "none") -> int:
    """Parameters of a Seq2Seq, in closed form (a test checks it against the module)."""
    H, E, D = hidden, embed_dim or default_embed(hidden), 2 if bidirectional else 1
    total = (src_vocab + tgt_vocab) * E
    total += cells.recurrent_params(cell, E, H, layers, bidirectional)
    total += (D * H * H + H) if D == 2 else 0
    total += cells.recurrent_params(cell, E + D * H, H, layers, False)
    total += (H * H + D * H * H + H + H) if attention == "additive" else 0
    return total + (H + D * H) * tgt_vocab + tgt_vocab
