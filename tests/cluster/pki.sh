# PKI for the test cluster, made with openssl. Sourced by tests/cluster/up.
# shellcheck shell=bash
gen_cert() { # name CN O "SANs(comma list: DNS:x,IP:y)" usage(server|client|both)
  local name="$1" cn="$2" o="$3" sans="$4" usage="$5"
  [ -f "$PKI/$name.crt" ] && return 0
  local eku="clientAuth"
  case "$usage" in server) eku="serverAuth" ;; both) eku="serverAuth,clientAuth" ;; esac
  local subj="/CN=$cn"; [ -n "$o" ] && subj="/O=$o$subj"
  local ext="$PKI/$name.ext"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [ -n "$sans" ] && echo "subjectAltName=$sans"
  } > "$ext"
  openssl genrsa -out "$PKI/$name.key" 2048 2>/dev/null
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$ext"
}

make_pki() { # node_ip node_name apiserver_advertise_ip
  local ip="$1" node="$2" adv="${3:-$1}"
  mkdir -p "$PKI"; chmod 700 "$PKI"
  if [ ! -f "$PKI/ca.crt" ]; then
    openssl genrsa -out "$PKI/ca.key" 2048 2>/dev/null
    openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=appcoup-cluster-ca" -days 3650 -sha256 \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
      -out "$PKI/ca.crt" 2>/dev/null
  fi
  gen_cert apiserver kube-apiserver "" \
    "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$CLUSTER_DOMAIN,DNS:localhost,DNS:$node,IP:$SERVICE_API_IP,IP:127.0.0.1,IP:$ip,IP:$adv" server
  gen_cert apiserver-kubelet-client kube-apiserver-kubelet-client "" "" client
  gen_cert kubelet "$node" "" "DNS:$node,DNS:localhost,IP:127.0.0.1,IP:$ip" server
  gen_cert kubelet-client "system:node:$node" "system:nodes" "" client
  gen_cert admin kubernetes-admin "system:masters" "" client
  gen_cert controller-manager system:kube-controller-manager "" "" client
  gen_cert scheduler system:kube-scheduler "" "" client
  gen_cert kube-proxy system:kube-proxy "" "" client
  gen_cert provisioner appcoup-cluster-provisioner "" "" client
  if [ ! -f "$PKI/sa.key" ]; then
    openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
    openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  fi
  chmod 600 "$PKI"/*.key
}

make_kubeconfig() { # file user cert server
  local f="$1" user="$2" cert="$3" server="$4"
  [ -f "$f" ] && return 0
  local ca crt key
  ca=$(base64 -w0 < "$PKI/ca.crt"); crt=$(base64 -w0 < "$PKI/$cert.crt"); key=$(base64 -w0 < "$PKI/$cert.key")
  cat > "$f" <<KC
apiVersion: v1
kind: Config
clusters:
- name: appcoup-cluster
  cluster:
    server: $server
    certificate-authority-data: $ca
users:
- name: $user
  user:
    client-certificate-data: $crt
    client-key-data: $key
contexts:
- name: $user@appcoup-cluster
  context:
    cluster: appcoup-cluster
    user: $user
current-context: $user@appcoup-cluster
KC
  chmod 600 "$f"
}
