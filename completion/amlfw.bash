# SPDX-License-Identifier: MIT
# bash completion for amlfw(8). Installed as /usr/share/bash-completion/completions/amlfw.

_amlfw() {
  local cur prev words cword
  if declare -F _init_completion >/dev/null 2>&1; then
    _init_completion || return
  else
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD - 1]}
    words=("${COMP_WORDS[@]}")
    cword=$COMP_CWORD
  fi

  local commands="plan apply run status reload explain check flush restore catalog version help"
  case "$prev" in
    --config | --service-tags)
      COMPREPLY=($(compgen -f -- "$cur"))
      compopt -o filenames 2>/dev/null
      return ;;
    --format)
      COMPREPLY=($(compgen -W "table json nft" -- "$cur"))
      return ;;
    --cloud)
      COMPREPLY=($(compgen -W "public usgov china" -- "$cur"))
      return ;;
    --revision)
      COMPREPLY=($(compgen -W "2021-10 2026-03" -- "$cur"))
      return ;;
  esac

  # The command is the first word that is neither an option nor an option's value.
  local i cmd=""
  for ((i = 1; i < cword; i++)); do
    case "${words[i]}" in
      --config | --service-tags | --format | --cloud | --revision) ((i++)) ;;
      -*) ;;
      *) cmd=${words[i]}; break ;;
    esac
  done
  if [ -z "$cmd" ]; then
    if [[ "$cur" == -* ]]; then
      COMPREPLY=($(compgen -W "--config --help" -- "$cur"))
    else
      COMPREPLY=($(compgen -W "$commands" -- "$cur"))
    fi
    return
  fi

  local opts="--config"
  case "$cmd" in
    plan) opts+=" --service-tags --format --json" ;;
    apply | run) opts+=" --force" ;;
    status) opts+=" --json" ;;
    explain) opts+=" --service-tags --json" ;;
    check) opts+=" --json --probe-tags" ;;
    catalog) opts+=" --revision --cloud --json" ;;
    version) opts+=" --json" ;;
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  fi
}
complete -F _amlfw amlfw
