# shellcheck shell=bash
# Sourced by packaging/smoke.sh: step 6, every ELF's DT_NEEDED resolved in the bundle or the system.

# --- 6. ELF dependencies of a bundle -------------------------------------------------------------

# elf_field WORDS OFFSET SIZE: the SIZE-byte field at byte OFFSET of the data held in the array
# named WORDS, as od printed it (signed ELF_W-byte words in the file's byte order; ELF fields are
# naturally aligned, so none straddles two words): result in _N; status 1 past the end.
# shellcheck disable=SC2317 # run by the bash that step_elf starts
elf_field() {
    local -n _words=$1
    local o=$2 n=$3 i=$(($2 / ELF_W)) s
    ((i < ${#_words[@]})) || return 1
    if ((n == ELF_W)); then
        _N=${_words[i]}
        return 0
    fi
    if ((ELF_LE)); then s=$(((o % ELF_W) * 8)); else s=$(((ELF_W - o % ELF_W - n) * 8)); fi
    _N=$(((_words[i] >> s) & ((1 << (n * 8)) - 1)))
}
# elf_words FILE OFFSET COUNT ARRAY: COUNT bytes of FILE from OFFSET as ELF_W-byte words.
# shellcheck disable=SC2317 # run by the bash that step_elf starts
elf_words() {
    local -n _into=$4
    local text
    # $(...) reads the pipe in bulk (`read` takes a pipe a byte at a time); od prints only
    # digits, signs and blanks, so the unquoted split below cannot glob.
    text=$(od -A n -v -t "d$ELF_W" --endian="$ELF_ENDIAN" -j "$2" -N "$3" -- "$1")
    # shellcheck disable=SC2206
    _into=($text)
    ((${#_into[@]} * ELF_W >= $3))
}
# elf_needed FILE IDENT: ELF_MACHINE and ELF_NEEDED (the DT_NEEDED names) of FILE, whose first
# 6 bytes are IDENT; ELF_ERR and status 1 if it cannot be parsed. Reads the ELF header, the
# program headers, PT_DYNAMIC and the needed names only, with od, dd and tr (LC_ALL=C): no
# binutils, no python3, three processes per file.
# shellcheck disable=SC2317 # run by the bash that step_elf starts
elf_needed() {
    local f=$1 i base type off vaddr filesz tag val strtab='' stroff='' name lo hi strs
    local dyn_off='' dyn_size='' phoff phentsize phnum phsrc=h phbase=0
    # shellcheck disable=SC2034 # ph is read through elf_field's nameref
    local -a h=() ph=() dyn=() needed_off=() l_vaddr=() l_off=() l_size=()
    ELF_NEEDED=() ELF_ERR='' ELF_MACHINE=''
    case ${2:4:1} in $'\x01') ELF_W=4 ;; $'\x02') ELF_W=8 ;; *) ELF_ERR="unknown ELF class"; return 1 ;; esac
    case ${2:5:1} in
    $'\x01') ELF_LE=1 ELF_ENDIAN=little ;;
    $'\x02') ELF_LE=0 ELF_ENDIAN=big ;;
    *) ELF_ERR="unknown byte order"; return 1 ;;
    esac
    # The ELF header and (nearly always) the program headers are in the first 4 KiB.
    elf_words "$f" 0 4096 h
    ((${#h[@]} * ELF_W >= (ELF_W == 8 ? 64 : 52))) || { ELF_ERR="shorter than an ELF header"; return 1; }
    elf_field h 18 2 && ELF_MACHINE=$_N
    if ((ELF_W == 8)); then
        elf_field h 32 8 && phoff=$_N
        elf_field h 54 2 && phentsize=$_N
        elf_field h 56 2 && phnum=$_N
    else
        elf_field h 28 4 && phoff=$_N
        elf_field h 42 2 && phentsize=$_N
        elf_field h 44 2 && phnum=$_N
    fi
    ((phnum == 0)) && return 0 # a relocatable object: nothing to load
    if ((phentsize < (ELF_W == 8 ? 56 : 32) || phentsize % ELF_W || phoff % ELF_W || phoff < 0)); then
        ELF_ERR="bad program header table"
        return 1
    fi
    if ((phoff + phnum * phentsize > ${#h[@]} * ELF_W)); then
        elf_words "$f" "$phoff" $((phnum * phentsize)) ph || { ELF_ERR="truncated program headers"; return 1; }
        phsrc=ph phbase=0
    else
        phbase=$phoff
    fi
    for ((i = 0; i < phnum; i++)); do
        base=$((phbase + i * phentsize))
        elf_field "$phsrc" "$base" 4 && type=$_N
        if ((ELF_W == 8)); then
            elf_field "$phsrc" $((base + 8)) 8 && off=$_N
            elf_field "$phsrc" $((base + 16)) 8 && vaddr=$_N
            elf_field "$phsrc" $((base + 32)) 8 && filesz=$_N
        else
            elf_field "$phsrc" $((base + 4)) 4 && off=$_N
            elf_field "$phsrc" $((base + 8)) 4 && vaddr=$_N
            elf_field "$phsrc" $((base + 16)) 4 && filesz=$_N
        fi
        case $type in
        1) l_vaddr+=("$vaddr") l_off+=("$off") l_size+=("$filesz") ;; # PT_LOAD
        2) dyn_off=$off dyn_size=$filesz ;;                             # PT_DYNAMIC
        esac
    done
    [[ -n $dyn_off ]] || return 0 # statically linked
    ((dyn_size > 0 && dyn_size < 1048576)) || { ELF_ERR="bad PT_DYNAMIC size $dyn_size"; return 1; }
    elf_words "$f" "$dyn_off" "$dyn_size" dyn || { ELF_ERR="truncated dynamic section"; return 1; }
    for ((i = 0; i + 1 < ${#dyn[@]}; i += 2)); do
        tag=${dyn[i]} val=${dyn[i + 1]}
        case $tag in
        0) break ;;                # DT_NULL
        1) needed_off+=("$val") ;; # DT_NEEDED
        5) strtab=$val ;;          # DT_STRTAB (an address)
        esac
    done
    ((${#needed_off[@]})) || return 0
    [[ -n $strtab ]] || { ELF_ERR="DT_NEEDED without DT_STRTAB"; return 1; }
    for ((i = 0; i < ${#l_vaddr[@]}; i++)); do
        if ((strtab >= l_vaddr[i] && strtab < l_vaddr[i] + l_size[i])); then
            stroff=$((strtab - l_vaddr[i] + l_off[i]))
            break
        fi
    done
    [[ -n $stroff ]] || { ELF_ERR="DT_STRTAB is in no PT_LOAD segment"; return 1; }
    # One read of the span of the string table that holds every needed name, NULs made \001.
    lo=${needed_off[0]} hi=${needed_off[0]}
    for val in "${needed_off[@]}"; do
        ((val < lo)) && lo=$val
        ((val > hi)) && hi=$val
    done
    strs=$(dd if="$f" bs=65536 iflag=skip_bytes,count_bytes skip=$((stroff + lo)) \
        count=$((hi - lo + 1024)) status=none | tr '\0' '\001')
    for val in "${needed_off[@]}"; do
        name=${strs:val-lo}
        name=${name%%$'\001'*}
        [[ -n $name ]] || { ELF_ERR="empty DT_NEEDED name at string offset $val"; return 1; }
        ELF_NEEDED+=("$name")
    done
}

# check_bundle DIR: prints "STATS elfs needed distinct in_bundle on_system unresolved",
# "SYSTEM libs...", "UNRESOLVED file -> lib" and "BAD file: reason" lines. Run by a bash with
# LC_ALL=C (byte semantics) under timeout: the functions are exported.
# shellcheck disable=SC2317 # run by the bash that step_elf starts
check_bundle() {
    local dir=$1 f rel magic lib arch ldconfig line tags
    local -A in_bundle=() sys=() seen=() seen_sys=()
    local elfs=0 needed=0 from_bundle=0 from_sys=0 unresolved=0
    while IFS= read -r -d '' f; do in_bundle[${f##*/}]=1; done < <(find "$dir" -xtype f -print0)
    # Not on a user's PATH on Debian (/sbin).
    ldconfig=$(PATH=$PATH:/sbin:/usr/sbin command -v ldconfig) || ldconfig=ldconfig
    while IFS= read -r line; do
        [[ $line =~ ^[[:space:]]*([^[:space:]]+)[[:space:]]+\(([^\)]*)\)[[:space:]]*=\> ]] || continue
        sys[${BASH_REMATCH[1]}]+="${BASH_REMATCH[2]};"
    done < <("$ldconfig" -p 2>/dev/null)
    ((${#sys[@]})) || echo "BAD ldconfig -p listed no libraries ($ldconfig)"
    while IFS= read -r -d '' f <&3; do
        magic=
        IFS= read -r -n 6 -d '' magic <"$f" || true
        [[ $magic == $'\x7fELF'* ]] || continue
        elfs=$((elfs + 1))
        rel=${f#"$dir"/}
        if ! elf_needed "$f" "$magic"; then
            echo "BAD $rel: $ELF_ERR"
            continue
        fi
        case $ELF_MACHINE in 62) arch=x86-64 ;; 183) arch=AArch64 ;; *) arch= ;; esac
        for lib in "${ELF_NEEDED[@]}"; do
            needed=$((needed + 1))
            seen[$lib]=1
            if [[ -n ${in_bundle[$lib]:-} ]]; then
                from_bundle=$((from_bundle + 1))
                continue
            fi
            tags=${sys[$lib]:-}
            if [[ -n $tags && (-z $arch || $tags == *"$arch"*) ]]; then
                from_sys=$((from_sys + 1))
                seen_sys[$lib]=1
                continue
            fi
            unresolved=$((unresolved + 1))
            echo "UNRESOLVED $rel -> $lib${tags:+ (only for ${tags%;})}"
        done
    done 3< <(find "$dir" -type f -print0 | sort -z)
    echo "STATS $elfs $needed ${#seen[@]} $from_bundle $from_sys $unresolved"
    if ((${#seen_sys[@]})); then
        printf '%s\n' "${!seen_sys[@]}" | sort | paste -sd ' ' - | sed 's/^/SYSTEM /'
    fi
}

export -f elf_field elf_words elf_needed check_bundle

step_elf() {
    begin_step elf-deps
    fresh_env elf || problem "could not make the private directories"
    local o=$ENV_DIR/out exe real dir kinds=() dirs=() d line n=0 c scan libs
    local -a stats=()
    for exe in "$APP" "$SERVER"; do
        if [[ $(kind "$exe") == missing ]]; then
            problem "$exe is missing or not executable"
            continue
        fi
        real=$(readlink -f -- "$exe")
        dir=${real%/*}
        if [[ -d $dir/_internal ]]; then
            [[ $(kind "$exe") == ELF ]] ||
                problem "${exe##*/} resolves to $real, beside _internal/ but not an ELF executable"
            [[ " ${dirs[*]} " == *" $dir "* ]] || dirs+=("$dir")
        else
            kinds+=("${exe##*/}: $(kind "$exe") in $dir, no _internal/")
        fi
    done
    if ((${#dirs[@]} == 0 && ${#STEP_ERRS[@]} == 0)); then
        line=$(printf '%s; ' "${kinds[@]}")
        end_step skip "no PyInstaller bundle (${line%; })"
        return
    fi
    ((${#kinds[@]} == 0)) || problem "only one executable is in a bundle: ${kinds[*]}"
    for d in "${dirs[@]}"; do
        n=$((n + 1))
        scan=$o/elf-$n.txt
        # shellcheck disable=SC2016 # expanded by the inner bash
        run "$scan" "$o/elf-$n.err" env LC_ALL=C "$BASH" -c 'check_bundle "$1"' elf-scan "$d"
        ((RC == 0)) || problem "the ELF scan of $d: $(rc_text "$RC")"
        attach "errors of the ELF scan of $d" "$o/elf-$n.err"
        line=$(grep '^STATS ' "$scan")
        read -r -a stats <<<"${line#STATS }"
        if ((${#stats[@]} != 6)); then
            problem "the ELF scan of $d did not finish"
            attach "ELF scan output" "$scan"
            continue
        fi
        ((stats[0] > 0)) || problem "no ELF files found in $d"
        note "$d: ${stats[0]} ELF files, ${stats[1]} DT_NEEDED entries of ${stats[2]} libraries: ${stats[3]} in the bundle, ${stats[4]} on the system, ${stats[5]} unresolved"
        c=$(grep -c '^UNRESOLVED ' "$scan")
        if ((c)); then
            libs=$(grep '^UNRESOLVED ' "$scan" | sed 's/.* -> //; s/ (only for .*//' | sort -u | paste -sd ' ' -)
            problem "$c DT_NEEDED entries are neither in the bundle nor on the system (ldconfig -p): $libs"
            while IFS= read -r line; do note "  unresolved: ${line#UNRESOLVED }"; done < <(grep '^UNRESOLVED ' "$scan")
        fi
        c=$(grep -c '^BAD ' "$scan")
        if ((c)); then
            problem "$c ELF files could not be read"
            while IFS= read -r line; do note "  unreadable: ${line#BAD }"; done < <(grep '^BAD ' "$scan")
        fi
        line=$(grep '^SYSTEM ' "$scan")
        [[ -z $line ]] || note "system libraries used: ${line#SYSTEM }"
    done
    end_step
}

