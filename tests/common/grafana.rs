//! Grafana cannot be installed here, so `check`'s Grafana part is tested against a small
//! server that implements the documented Grafana HTTP API endpoints it calls, as
//! Grafana answers them:
//! - `GET /api/search?type=dash-db&dashboardUIDs=UID`: a list of hits
//!   (`[{"uid", "title", "type": "dash-db", …}]`, `[]` when none);
//! - `GET /api/dashboards/uid/UID`: `{"dashboard": {…, "id", "uid", "version"}, "meta"}`,
//!   404 `{"message": "Dashboard not found"}`;
//! - `GET /api/datasources/uid/UID/health`: 200 `{"status": "OK", "message"}` when the
//!   datasource's backend answers, 400 `{"status": "ERROR", "message"}` when not. Its
//!   Prometheus health check runs a query against the datasource's URL, and so does
//!   this one, against the real Prometheus of the test.
//!
//! Every request needs `Authorization: Bearer TOKEN` (a service account token), else
//! 401, as Grafana answers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

pub struct FakeGrafana {
    pub port: u16,
    /// Dashboards as Grafana stores them (with `id` and `version`).
    pub dashboards: Arc<Mutex<Vec<Value>>>,
}

impl FakeGrafana {
    /// Serves `dashboards` (provisioned: Grafana adds `id` and `version`), the
    /// datasource `datasource_uid` backed by Prometheus on `prometheus_port`.
    pub fn start(
        token: &str,
        dashboards: Vec<Value>,
        datasource_uid: &str,
        prometheus_port: u16,
    ) -> FakeGrafana {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stored: Vec<Value> = dashboards
            .into_iter()
            .enumerate()
            .map(|(i, mut d)| {
                d["id"] = json!(i + 1);
                d["version"] = json!(1);
                d
            })
            .collect();
        let dashboards = Arc::new(Mutex::new(stored));
        let shared = Arc::clone(&dashboards);
        let token = format!("Bearer {token}");
        let ds = datasource_uid.to_owned();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (status, body) = answer(&conn, &token, &shared, &ds, prometheus_port);
                let mut conn = conn;
                let body = body.to_string();
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        FakeGrafana { port, dashboards }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What an operator's edit in Grafana's UI does: the stored dashboard changes.
    pub fn edit(&self, uid: &str, f: impl FnOnce(&mut Value)) {
        let mut d = self.dashboards.lock().unwrap();
        let one = d.iter_mut().find(|d| d["uid"] == uid).unwrap();
        f(one);
        one["version"] = json!(one["version"].as_u64().unwrap_or(0) + 1);
    }
}

fn answer(
    conn: &TcpStream,
    token: &str,
    dashboards: &Mutex<Vec<Value>>,
    datasource: &str,
    prometheus_port: u16,
) -> (u16, Value) {
    let mut reader = BufReader::new(conn);
    let mut first = String::new();
    if reader.read_line(&mut first).is_err() {
        return (400, json!({}));
    }
    let mut authorized = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("authorization") && v.trim() == token {
                authorized = true;
            }
        }
    }
    if !authorized {
        return (401, json!({"message": "Unauthorized"}));
    }
    let target = first.split(' ').nth(1).unwrap_or("/").to_owned();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let param = |name: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
    };
    let d = dashboards.lock().unwrap();
    if path == "/api/search" {
        let uids = param("dashboardUIDs");
        let hits: Vec<Value> = d
            .iter()
            .filter(|x| uids.as_deref().is_none_or(|u| x["uid"] == u))
            .map(|x| json!({"id": x["id"], "uid": x["uid"], "title": x["title"], "type": "dash-db", "tags": x["tags"]}))
            .collect();
        return (200, Value::Array(hits));
    }
    if let Some(uid) = path.strip_prefix("/api/dashboards/uid/") {
        return match d.iter().find(|x| x["uid"] == uid) {
            Some(x) => (
                200,
                json!({"dashboard": x, "meta": {"provisioned": true, "slug": "shoehub"}}),
            ),
            None => (404, json!({"message": "Dashboard not found"})),
        };
    }
    if path == format!("/api/datasources/uid/{datasource}/health") {
        let ok = TcpStream::connect(("127.0.0.1", prometheus_port)).is_ok()
            && super::http("GET", prometheus_port, "/api/v1/query?query=1%2B1", &[]).status == 200;
        return if ok {
            (
                200,
                json!({"status": "OK", "message": "Successfully queried the Prometheus API."}),
            )
        } else {
            (
                400,
                json!({"status": "ERROR", "message": "Post \"http://127.0.0.1/api/v1/query\": connection refused"}),
            )
        };
    }
    (404, json!({"message": "Not found"}))
}
