fn main() {
    println!("rigger");
}
